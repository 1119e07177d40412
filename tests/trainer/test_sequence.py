import pytest
import torch

from recx.trainer.data import Batch
from recx.trainer.sequence.bert4rec import BERT4Rec
from recx.trainer.sequence.gru4rec import GRU4Rec
from recx.trainer.sequence.sasrec import SASRec, causal_allowed


def padded_pair(encoder, D=8):
    """The same 3 items with 2 and with 5 positions of left padding."""
    torch.manual_seed(0)
    items = torch.randn(1, 3, D)
    short = torch.cat([torch.zeros(1, 2, D), items], 1)
    long = torch.cat([torch.zeros(1, 5, D), items], 1)
    return encoder(short, (short.abs().sum(-1) > 0)), encoder(long, (long.abs().sum(-1) > 0))


def test_causal_pattern():
    allowed = causal_allowed(torch.tensor([[False, True, True]]))[0, 0]
    assert allowed.tolist() == [[True, False, False], [False, True, False], [False, True, True]]


def test_sasrec_state_ignores_padding_and_future():
    enc = SASRec(8, layers=2, heads=2, dropout=0.0, max_len=10).eval()
    a, b = padded_pair(enc)
    torch.testing.assert_close(a[:, -3:], b[:, -3:])
    x = torch.randn(1, 4, 8)
    pad = torch.ones(1, 4, dtype=torch.bool)
    y = x.clone()
    y[:, -1] = torch.randn(8)  # changing the last item must not change earlier states
    torch.testing.assert_close(enc(x, pad)[:, :3], enc(y, pad)[:, :3])


def test_gru4rec_state_ignores_padding_amount():
    enc = GRU4Rec(8, layers=1, dropout=0.0).eval()
    a, b = padded_pair(enc)
    torch.testing.assert_close(a[:, -3:], b[:, -3:])


def test_bert4rec_is_bidirectional_and_masks_at_least_one_item():
    enc = BERT4Rec(8, layers=1, heads=2, dropout=0.0, max_len=10, mask_ratio=0.2).eval()
    x = torch.randn(1, 4, 8)
    pad = torch.ones(1, 4, dtype=torch.bool)
    y = x.clone()
    y[:, -1] = torch.randn(8)
    assert not torch.allclose(enc(x, pad)[:, 0], enc(y, pad)[:, 0])
    items = torch.tensor([[0, 0, 3, 4], [5, 6, 7, 8]])
    batch = Batch(items, items, torch.arange(2))
    out = enc.mask_batch(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out.inputs, items)
    assert out.masked.any(1).all() and not (out.masked & (items == 0)).any()
    assert torch.equal(out.targets, torch.where(out.masked, items, 0))


@pytest.mark.parametrize(
    "encoder",
    [SASRec(8, layers=2, heads=2, dropout=0.0, max_len=10), BERT4Rec(8, layers=2, heads=2, dropout=0.0, max_len=10), GRU4Rec(8, layers=2, dropout=0.0)],
    ids=["sasrec", "bert4rec", "gru4rec"],
)
def test_last_only_is_the_last_state_of_the_full_output(encoder):
    """Ranking reads one state per user: last_only must equal the full output's last position,
    with left padding in the batch, and the scripted encoder (recx export) must agree."""
    encoder = encoder.eval()
    torch.manual_seed(1)
    x = torch.randn(3, 6, 8)
    pad = torch.tensor([[False, False, True, True, True, True], [True] * 6, [False] * 5 + [True]])
    x = x * pad.unsqueeze(-1)
    full = encoder(x, pad)
    last = encoder(x, pad, last_only=True)
    assert last.shape == (3, 1, 8)
    torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.jit.script(encoder)(x, pad, True), last, rtol=1e-5, atol=1e-6)
