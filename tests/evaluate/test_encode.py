"""Length-bucketed user encoding equals the trainer's padded encoding."""

import numpy as np
import pytest
import torch
from torch import nn

from recx.errors import RecxError
from recx.evaluate.encode import encode_users, supports_bucketing
from recx.trainer.model import SequentialRecommender
from recx.trainer.sequence.sasrec import SASRec
from recx.trainer.towers import IdTower


def tiny_model(max_len=8):
    torch.manual_seed(0)
    return SequentialRecommender(IdTower(30, 16), SASRec(16, layers=2, heads=2, dropout=0.3, max_len=max_len))


def test_bucketed_equals_padded():
    model = tiny_model()
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, 31, size=rng.integers(1, 13)) for _ in range(40)]  # some longer than max_len
    model.train()  # encode_users must switch dropout off itself and restore the mode
    got = encode_users(model, histories, max_len=8, batch_size=3)
    assert model.training
    model.eval()
    ref = model.user_vectors(histories, 8, batch_size=7).numpy()
    assert got.shape == (40, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_refuses_unknown_encoders_and_empty_histories():
    class Other(nn.Module):
        def forward(self, x, pad):
            return x

    other = SequentialRecommender(IdTower(5, 4), Other())
    assert not supports_bucketing(other)
    with pytest.raises(RecxError, match="only exact"):
        encode_users(other, [np.array([1])], 4)
    with pytest.raises(RecxError, match="empty history"):
        encode_users(tiny_model(), [np.array([1]), np.array([], dtype=np.int64)], 8)
