"""linear_softmax_cross_entropy equals the plain path (the whole [P, C] logits, then
softmax_cross_entropy): loss and every gradient, across block boundaries, with cosine /
temperature, offsets, masks and a history term (both gradients), with a frozen table, without
grad, and inside a bf16 autocast region."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from recx.trainer.losses.linear_softmax import TermScores, linear_softmax_cross_entropy
from recx.trainer.losses.similarity import similarity
from recx.trainer.losses.softmax import softmax_cross_entropy


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


# -- offsets, masks and a history term, against the whole logits ---------------------------------

def whole_logits_loss(states, vectors, targets, temperature, offsets, mask, columns, values, unmask, gradient):
    """The reference: the [P, C] logits built whole, the term added with scatter_add into a
    spare column C for padding, masked (with the term: what the loss masks but the term
    unmasks), then softmax_cross_entropy (``term``: the term-free loss plus the term's loss over
    the detached logits; ``all``: the term's loss alone)."""
    logits = similarity(states, vectors, temperature) + offsets
    if columns is None:
        return softmax_cross_entropy(logits.masked_fill(mask, float("-inf")), targets)

    def with_term(x):
        wide = torch.cat([x, x.new_zeros(len(x), 1)], dim=1).scatter_add(1, columns, values)
        return wide[:, :-1].masked_fill(mask & ~unmask, float("-inf"))

    if gradient == "all":
        return softmax_cross_entropy(with_term(logits), targets)
    return softmax_cross_entropy(logits.masked_fill(mask, float("-inf")), targets) + softmax_cross_entropy(with_term(logits.detach()), targets)


def masked_problem(rows: int, columns: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    states, vectors, targets = inputs(rows, columns, seed=seed)
    offsets = torch.randn(columns, generator=g)
    mask = torch.rand(rows, columns, generator=g) < 0.3
    mask[torch.arange(rows), targets] = False  # a target is never masked
    term_columns = torch.randint(0, columns + 1, (rows, 6), generator=g)  # column C: padding
    values = torch.randn(rows, 6, generator=g)
    unmask = torch.rand(rows, columns, generator=g) >= 0.5  # the term scores these masked candidates
    return states, vectors, targets, offsets, mask, term_columns, values, unmask


@pytest.mark.parametrize("gradient", [None, "term", "all"])
@pytest.mark.parametrize("temperature", [0.0, 0.1])
@pytest.mark.parametrize("block_elements", [16 * 40, 1 << 18])
def test_offsets_masks_and_a_history_term_equal_the_whole_logits(gradient, temperature, block_elements):
    """37 rows over 40 candidates: blocks of 16 rows (16+16+5) or one block; an item may sit
    twice in a row's columns (the term adds twice) and column C is padding."""
    states, vectors, targets, offsets, mask, columns, values, unmask = masked_problem(37, 40, seed=7)
    results = []
    for blocked in (False, True):
        s, v, w = (x.clone().requires_grad_() for x in (states, vectors, values))
        if blocked:
            term = None if gradient is None else TermScores(columns, w, lambda a, b: unmask[a:b], gradient)
            loss = linear_softmax_cross_entropy(s, v, targets, temperature, offsets=offsets, mask=lambda a, b: mask[a:b].clone(), term=term,
                                                block_elements=block_elements)
        else:
            loss = whole_logits_loss(s, v, targets, temperature, offsets, mask, None if gradient is None else columns, w, unmask, gradient)
        (loss * 1.5).backward()
        results.append((loss.detach(), s.grad, v.grad, w.grad))
    (ref, *ref_grads), (mine, *grads) = results
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads, ref_grads):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    if gradient is not None:
        assert grads[2].abs().sum() > 0 and (grads[2][columns == 40] == 0).all()  # the term learns; padding gets nothing


def test_with_gradient_term_the_encoder_learns_as_without_a_term():
    states, vectors, targets, offsets, mask, columns, values, unmask = masked_problem(20, 30, seed=3)
    grads = []
    for term in (None, TermScores(columns, values.clone().requires_grad_(), lambda a, b: unmask[a:b], "term")):
        s, v = states.clone().requires_grad_(), vectors.clone().requires_grad_()
        linear_softmax_cross_entropy(s, v, targets, 0.0, offsets=offsets, mask=lambda a, b: mask[a:b].clone(), term=term).backward()
        grads.append((s.grad, v.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=0, atol=0)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=0, atol=0)


def test_an_unknown_history_gradient_is_refused():
    states, vectors, targets = inputs(3, 5)
    term = TermScores(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 1), None, "both")
    with pytest.raises(ValueError, match="history gradient 'both'"):
        linear_softmax_cross_entropy(states, vectors, targets, 0.0, term=term)
