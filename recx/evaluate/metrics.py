"""Ranking metrics for one target per user: HR@K (= Recall@K), NDCG@K, MRR.

Everything here works on the 1-based rank of each user's target in the full catalog, so the
same code serves validation inside training and `recx eval`.

Ties: a target whose score equals other items' scores gets either the pessimistic rank
(1 + #items scoring >= target, excluding itself) or the expected rank under random
tie-breaking (1 + #greater + #equal / 2).  Pessimistic is the default: it never flatters a
model that collapses scores.
"""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
import torch

TieRule = Literal["pessimistic", "expected"]


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    excluded: torch.Tensor | None = None,
    ties: TieRule = "pessimistic",
) -> torch.Tensor:
    """1-based rank of each target among the catalog.

    Args:
        scores: [B, N+1] scores over item indices; column 0 (padding) is ignored.
        targets: [B] target item indices in 1..N.
        excluded: optional [B, N+1] bool, True for items removed from the ranking (e.g. the
            user's history).  The target itself is never excluded.
        ties: "pessimistic" or "expected" (see module doc).

    Returns:
        [B] float64 ranks (integers for pessimistic; may end in .5 for expected).
    """
    if scores.dim() != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [B, N+1] and targets [B]; got {tuple(scores.shape)} and {tuple(targets.shape)}")
    scores = scores.float()
    target_scores = scores.gather(1, targets.view(-1, 1))  # [B, 1]
    valid = torch.ones_like(scores, dtype=torch.bool)
    valid[:, 0] = False
    if excluded is not None:
        valid &= ~excluded
    valid.scatter_(1, targets.view(-1, 1), False)  # the target is counted separately
    greater = ((scores > target_scores) & valid).sum(1).double()
    if ties == "pessimistic":
        equal = ((scores == target_scores) & valid).sum(1).double()
        return 1.0 + greater + equal
    if ties == "expected":
        equal = ((scores == target_scores) & valid).sum(1).double()
        return 1.0 + greater + equal / 2.0
    raise ValueError(f"unknown tie rule {ties!r}; expected 'pessimistic' or 'expected'")


def metrics_from_ranks(ranks: np.ndarray | torch.Tensor, ks: Iterable[int] = (10,)) -> dict[str, float]:
    """Mean HR@K, NDCG@K for each K, and MRR, from 1-based ranks [U]."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r <= k
        out[f"hr@{k}"] = hit.double().mean().item()
        out[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(r + 1.0), torch.zeros_like(r)).mean().item()
    out["mrr"] = (1.0 / r).mean().item()
    return out


def per_user_metrics(ranks: np.ndarray | torch.Tensor, ks: Iterable[int] = (10,)) -> dict[str, np.ndarray]:
    """Per-user HR@K, NDCG@K and reciprocal rank, each [U] float64."""
    r = np.asarray(torch.as_tensor(ranks, dtype=torch.float64))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = r <= k
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(r + 1.0), 0.0)
    out["mrr"] = 1.0 / r
    return out


def target_ranks_indexed(
    scores: torch.Tensor,
    targets: torch.Tensor,
    excluded_index: torch.Tensor | None = None,
    ties: TieRule = "pessimistic",
) -> torch.Tensor:
    """``target_ranks`` with the exclusions given as item indices instead of a dense mask.

    Same result as ``target_ranks(scores, targets, mask, ties)`` where ``mask`` marks every
    index in ``excluded_index``, but it makes one pass over ``scores`` (pessimistic: count >=;
    expected: two, count > and ==) and corrects the counts afterwards, instead of building
    [B, N+1] masks: the cost that dominates full-catalog ranking of large catalogs.

    Args:
        scores: [B, N+1] (any memory layout: ranks_matmul passes an [N+1, B] buffer's
            transpose); column 0 (padding) is ignored.
        targets: [B] in 1..N.
        excluded_index: optional [B, L] int64 item indices, 0 = unused slot.  Each row must be
            free of duplicates; the target may appear (it is never excluded).
    Returns:
        [B] float64 ranks.
    """
    if scores.dim() != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [B, N+1] and targets [B]; got {tuple(scores.shape)} and {tuple(targets.shape)}")
    if ties not in ("pessimistic", "expected"):
        raise ValueError(f"unknown tie rule {ties!r}; expected 'pessimistic' or 'expected'")
    scores = scores.float()
    t = scores.gather(1, targets.view(-1, 1))  # [B, 1]
    # pessimistic ranks count one relation (>=), expected ones two (> and ==), over the whole
    # row; the target itself, column 0 and the excluded items are taken off after
    live = None
    if excluded_index is not None and excluded_index.numel():
        ex = excluded_index.to(scores.device)
        live, s_ex = (ex > 0) & (ex != targets.view(-1, 1)), scores.gather(1, ex)
    counts = {}
    for relation in ("ge",) if ties == "pessimistic" else ("gt", "eq"):
        n = _count(scores, t, relation) - int(relation != "gt")  # the target itself: x >= x, x == x
        n -= _compare(scores[:, 0:1], t, relation).flatten().long()  # column 0 is not an item
        if live is not None:
            n -= (_compare(s_ex, t, relation) & live).sum(1)
        counts[relation] = n
    if ties == "pessimistic":
        return 1.0 + counts["ge"].double()
    return 1.0 + counts["gt"].double() + counts["eq"].double() / 2.0


def _compare(scores: torch.Tensor, t: torch.Tensor, relation: str) -> torch.Tensor:
    return {"ge": torch.ge, "gt": torch.gt, "eq": torch.eq}[relation](scores, t)


def _count(scores: torch.Tensor, t: torch.Tensor, relation: str) -> torch.Tensor:
    """[B] int64: per row, the columns of ``scores`` [B, N+1] in ``relation`` to ``t`` [B, 1]."""
    if scores.device.type != "cpu":
        return torch.count_nonzero(_compare(scores, t, relation), dim=1)
    # numpy counts a bool matrix ~5x faster than torch on CPU, in either memory layout
    op = {"ge": np.greater_equal, "gt": np.greater, "eq": np.equal}[relation]
    return torch.from_numpy(np.count_nonzero(op(scores.numpy(), t.numpy()), axis=1).astype(np.int64))
