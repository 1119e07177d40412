"""Greedy ensemble selection and score scaling on hand-made score matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recx.ensemble.selection import equal_select, greedy_select, metric_of, score_scale


def test_score_scale_is_one_over_the_score_spread():
    users = np.array([[1.0, 0.0]], np.float32)
    table = np.array([[9.0, 9.0], [1.0, 0.0], [-1.0, 0.0], [3.0, 5.0]], np.float32)  # row 0 (padding) is ignored
    assert score_scale(torch.from_numpy(users @ table.T)) == pytest.approx(1.0 / float(np.std([1.0, -1.0, 3.0], ddof=1)))
    with pytest.raises(ValueError, match="do not vary"):
        score_scale(torch.from_numpy(users @ np.zeros((4, 2), np.float32).T))


def test_metric_of_uses_pessimistic_ties_and_the_exclusion_mask():
    scores = torch.tensor([[0.0, 1.0, 1.0, 0.5]])  # the target (item 1) ties with item 2
    targets = torch.tensor([1])
    assert metric_of(scores, targets, "hr@1") == 0.0
    assert metric_of(scores, targets, "mrr") == pytest.approx(0.5)
    excluded = torch.tensor([[2]])  # item indices, as retrieval.pad_lists writes them
    assert metric_of(scores, targets, "hr@1", excluded) == 1.0
    with pytest.raises(ValueError, match="unknown metric"):
        metric_of(scores, targets, "precision@1")


def _scores():
    """Three members over 4 users and items 1..3 (column 0 is padding); targets 1, 2, 3, 1.

    a ranks users 0 and 3 first, b users 1 and 2; c is a noisy copy of a.  a + b ranks
    every user's target first once the margins add up."""
    a = torch.tensor([[0, 3, 0, 1], [0, 2, 1, 0], [0, 2, 0, 1], [0, 3, 1, 0]], dtype=torch.float32)
    b = torch.tensor([[0, 0, 1, 0], [0, 0, 3, 0], [0, 0, 0, 3], [0, 0, 1, 0]], dtype=torch.float32)
    c = a + torch.tensor([[0, 0, 3, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    return [a, b, c], torch.tensor([1, 2, 3, 1])


def test_greedy_selection_adds_the_member_that_helps_and_stops():
    scores, targets = _scores()
    sel = greedy_select(scores, targets, "hr@1")
    assert sel.alone == [0.5, 0.5, 0.25]
    # round 0: a and b tie at 0.5, the lower index wins; round 1: a + b ranks all four first
    assert [t["member"] for t in sel.trace] == [0, 1]
    assert sel.counts == [1, 1, 0] and sel.weights == [0.5, 0.5, 0.0]
    assert sel.value == 1.0


def test_greedy_selection_repeats_a_member_to_raise_its_weight():
    (a, b, _), targets = _scores()
    # with b's margins doubled, a + 2b still ties user 3's target with item 2 (0.75): a needs twice b's weight
    b2 = 2 * b
    sel = greedy_select([a, b2], targets, "hr@1")
    assert [t["member"] for t in sel.trace] == [0, 1, 0]
    assert [t["value"] for t in sel.trace] == [0.5, 0.75, 1.0]
    assert sel.counts == [2, 1]
    assert sel.weights == pytest.approx([2 / 3, 1 / 3])


def test_greedy_selection_respects_the_round_cap_and_checks_shapes():
    scores, targets = _scores()
    assert greedy_select(scores, targets, "hr@1", rounds=1).counts == [1, 0, 0]
    with pytest.raises(ValueError, match="at least one"):
        greedy_select([], targets)
    with pytest.raises(ValueError, match=r"\[U, N\+1\]"):
        greedy_select([scores[0], scores[1][:3]], targets)


def test_equal_selection_is_the_plain_sum():
    scores, targets = _scores()
    sel = equal_select(scores, targets, "mrr")
    assert sel.weights == pytest.approx([1 / 3] * 3)
    assert sel.value == pytest.approx(metric_of(scores[0] + scores[1] + scores[2], targets, "mrr"))
    assert all(math.isfinite(v) for v in sel.alone)
