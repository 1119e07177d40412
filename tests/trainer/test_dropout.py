"""recx's CPU dropout: Bernoulli masks from 16 random bits, the same expectation as torch's, and
the transformer's attention path that uses it equals scaled_dot_product_attention."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from recx.trainer import dropout as D
from recx.trainer.sequence import transformer


@pytest.mark.parametrize("p", [0.5, 0.2, 0.1])
def test_keep_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    y = D.dropout(x, p, True)
    kept = 1 - round(p * 65536) / 65536
    assert abs((y == 0).float().mean().item() - p) < 0.005  # 4e5 draws: the std is under 0.001
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / kept))  # kept values, scaled exactly
    assert abs(y.mean().item() - 1) < 0.01


def test_gradient_is_the_mask_and_the_stream_follows_the_seed():
    x = torch.randn(8, 50, 64, requires_grad=True)
    torch.manual_seed(3)
    y = D.dropout(x, 0.5, True)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, torch.where(y != 0, 2.0, 0.0))
    torch.manual_seed(3)
    assert torch.equal(D.dropout(x, 0.5, True), y)  # a resumed run redraws the same masks


def test_identity_when_off_and_torch_at_the_edges():
    x = torch.randn(3, 4)
    assert D.dropout(x, 0.5, False) is x and D.dropout(x, 0.0, True) is x
    assert torch.equal(D.dropout(x, 1.0, True), torch.zeros_like(x))
    module = D.Dropout(0.3)
    assert module.eval()(x) is x and "p=0.3" in repr(module)
    with pytest.raises(ValueError, match="dropout probability"):
        D.Dropout(1.5)


def test_attention_math_path_equals_sdpa(monkeypatch):
    """Training on CPU with attention dropout takes recx's own path: with the mask switched
    off it must give what scaled_dot_product_attention gives, values and gradients."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 2, 5, 4, requires_grad=True) for _ in range(3))
    allowed = torch.ones(5, 5, dtype=torch.bool).tril().expand(2, 1, 5, 5).clone()
    allowed[0, :, :, :2] = False
    allowed |= torch.eye(5, dtype=torch.bool)
    monkeypatch.setattr(transformer, "dropout", lambda x, p, training: x)
    mine = transformer.attention(q, k, v, allowed, 0.5, True)
    grads = torch.autograd.grad(mine.sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    ref_grads = torch.autograd.grad(ref.sum(), (q, k, v))
    torch.testing.assert_close(mine, ref)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)
