"""linear_softmax_cross_entropy equals the plain path (the whole [P, C] logits, then
softmax_cross_entropy): loss and both gradients, across block boundaries, with cosine /
temperature, with a frozen table, without grad, and inside a bf16 autocast region."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from recx.trainer.losses.linear_softmax import linear_softmax_cross_entropy
from recx.trainer.losses.similarity import similarity


def inputs(rows: int, columns: int, width: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, width, generator=g), torch.randn(columns, width, generator=g), torch.randint(0, columns, (rows,), generator=g)


def loss_and_grads(fn, states, vectors, targets, frozen: bool = False, upstream: float = 1.0):
    s = states.clone().requires_grad_()
    v = vectors.clone().requires_grad_(not frozen)
    loss = fn(s, v, targets)
    (loss * upstream).backward()
    return loss.detach(), s.grad, v.grad


def plain(temperature: float):
    return lambda s, v, t: F.cross_entropy(similarity(s, v, temperature), t)


def fused(temperature: float, block_elements: int):
    return lambda s, v, t: linear_softmax_cross_entropy(s, v, t, temperature, block_elements=block_elements)


@pytest.mark.parametrize("temperature", [0.0, 0.05])
@pytest.mark.parametrize("rows,block_elements", [(1, 1 << 18), (37, 16 * 30), (37, 17 * 30), (100, 1 << 18)])
def test_equals_the_whole_logits_path_with_gradients(temperature, rows, block_elements):
    """Block boundaries included: 30 candidates in blocks of 16 or 17 rows split 37 rows 16+16+5 / 17+17+3."""
    states, vectors, targets = inputs(rows, 30, seed=rows)
    ref = loss_and_grads(plain(temperature), states, vectors, targets, upstream=2.5)
    mine = loss_and_grads(fused(temperature, block_elements), states, vectors, targets, upstream=2.5)
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_frozen_table_gets_no_gradient_and_the_states_the_same_one():
    states, vectors, targets = inputs(20, 50)
    ref = loss_and_grads(plain(0.0), states, vectors, targets, frozen=True)
    mine = loss_and_grads(fused(0.0, 1 << 18), states, vectors, targets, frozen=True)
    assert mine[2] is None and ref[2] is None
    torch.testing.assert_close(mine[0], ref[0])
    torch.testing.assert_close(mine[1], ref[1])


def test_far_away_targets_keep_a_finite_exact_loss():
    """A target whose exponential underflows (logit 200 under the row's best) still scores its
    loss from its logit, not from log(0)."""
    states = torch.tensor([[10.0, 0.0]])
    vectors = torch.tensor([[10.0, 0.0], [-10.0, 0.0]])
    loss = linear_softmax_cross_entropy(states, vectors, torch.tensor([1]), 0.0)
    torch.testing.assert_close(loss, F.cross_entropy(states @ vectors.T, torch.tensor([1])))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(200.0)


def test_without_grad_it_only_scores():
    states, vectors, targets = inputs(10, 12)
    s = states.clone().requires_grad_()
    with torch.no_grad():
        loss = linear_softmax_cross_entropy(s, vectors, targets, 0.0)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, F.cross_entropy(states @ vectors.T, targets))


def test_inside_autocast_its_matmuls_stay_fp32():
    """Called inside a bf16 autocast region (on bf16 states) it equals the plain path run in
    fp32 outside it, as the trainer runs its losses."""
    states, vectors, targets = inputs(16, 50)
    results = []
    for inside in (False, True):
        s = states.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = s.to(torch.bfloat16) * 1.0  # a bf16 activation, as an encoder's output under autocast
            if inside:
                loss = linear_softmax_cross_entropy(h, vectors, targets, 0.0)
        if not inside:
            loss = F.cross_entropy(similarity(h, vectors, 0.0), targets)
        assert loss.dtype == torch.float32
        loss.backward()
        results.append((loss.detach(), s.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
