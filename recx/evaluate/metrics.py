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
