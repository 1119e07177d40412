import numpy as np
import pytest
import torch

from recx.trainer.config import TrainConfig
from recx.trainer.data import left_pad
from recx.trainer.model import SequentialRecommender, build_encoder
from recx.trainer.towers import IdTower


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "bert4rec"])
def test_user_vectors_equal_one_padded_user_at_a_time(name):
    torch.manual_seed(0)
    cfg = TrainConfig.from_options(model=name, hidden=16, layers=1, heads=2, max_len=8, dropout=0.0)
    model = SequentialRecommender(IdTower(30, 16), build_encoder(cfg)).eval()
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, 31, size=n) for n in [1, 12, 3, 3, 7, 2, 9, 5]]
    fast = model.user_vectors(histories, max_len=8, batch_size=3)
    for u, h in enumerate(histories):
        width = 8 if model.causal else 7
        row = torch.from_numpy(left_pad([h], width))
        masked = None
        if not model.causal:
            row = torch.cat([row, torch.ones(1, 1, dtype=row.dtype)], 1)
            masked = torch.zeros_like(row, dtype=torch.bool)
            masked[:, -1] = True
        with torch.no_grad():
            slow = model(row, masked)[0, -1]
        torch.testing.assert_close(fast[u], slow, rtol=1e-4, atol=1e-5)


def test_causal_training_batch_never_predicts_from_padding():
    from recx.trainer.data import Batch

    model = SequentialRecommender(IdTower(9, 8), build_encoder(TrainConfig.from_options(hidden=8, layers=1, heads=2, max_len=3)))
    # rows [0, 1, 2] and [3, 4, 5] in one batch of width 3: the first row's item 1 follows padding
    batch = Batch(torch.tensor([[0, 1], [3, 4]]), torch.tensor([[1, 2], [4, 5]]), torch.tensor([0, 1]))
    out = model.training_batch(batch, torch.Generator())
    assert out.targets.tolist() == [[0, 2], [4, 5]]
    assert out.inputs is batch.inputs
