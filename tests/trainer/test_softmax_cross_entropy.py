"""softmax_cross_entropy equals F.cross_entropy: the loss and the gradient, with masked (-inf)
logits, and when the logits come out of a bf16 autocast region in fp32."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from recx.trainer.losses.softmax import softmax_cross_entropy


def both(logits: torch.Tensor, targets: torch.Tensor, upstream: float = 1.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for fn in (F.cross_entropy, softmax_cross_entropy):
        x = logits.clone().requires_grad_()
        loss = fn(x, targets)
        (loss * upstream).backward()
        out.append((loss.detach(), x.grad))
    return out


@pytest.mark.parametrize("rows,columns", [(1, 2), (7, 5), (64, 300)])
def test_equals_torch_cross_entropy_with_gradients(rows, columns):
    g = torch.Generator().manual_seed(rows * columns)
    logits = torch.randn(rows, columns, generator=g) * 4
    targets = torch.randint(0, columns, (rows,), generator=g)
    (ref, ref_grad), (mine, grad) = both(logits, targets, upstream=2.5)
    torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_masked_logits_get_no_gradient():
    logits = torch.tensor([[1.0, float("-inf"), 0.5, 2.0], [float("-inf"), 3.0, float("-inf"), -1.0]])
    targets = torch.tensor([2, 3])
    (ref, ref_grad), (mine, grad) = both(logits, targets)
    torch.testing.assert_close(mine, ref)
    torch.testing.assert_close(grad, ref_grad)
    assert grad[0, 1] == 0 and grad[1, 0] == 0 and grad[1, 2] == 0
    # softmax - one-hot, over the rows' mean: each row's gradient sums to zero
    torch.testing.assert_close(grad.sum(1), torch.zeros(2), atol=1e-7, rtol=0)


def test_logits_from_a_bf16_region():
    g = torch.Generator().manual_seed(0)
    h, table = torch.randn(16, 8, generator=g, requires_grad=True), torch.randn(50, 8, generator=g)
    targets = torch.randint(0, 50, (16,), generator=g)
    grads = []
    for fn in (F.cross_entropy, softmax_cross_entropy):
        h.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = (h @ table.T).float()  # the trainer keeps losses in fp32
            loss = fn(logits, targets)
        loss.backward()
        grads.append((loss.detach(), h.grad.clone()))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])


def test_a_second_backward_fails_loudly():
    """The backward turns its saved exponentials into the gradient in place: a second backward
    through the same graph must raise, not return a wrong gradient."""
    x = torch.randn(4, 6, requires_grad=True)
    loss = softmax_cross_entropy(x, torch.tensor([0, 1, 2, 3]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
