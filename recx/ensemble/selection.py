"""Which members an ensemble keeps, and with which weights: greedy selection on validation.

Members are trained runs of one dataset. Each gives a score matrix over the catalog for the
validation users, [U, N+1] (column 0 is padding). Their scales differ (a dot product trained
with debiased CE, a cosine over a temperature, BCE logits), so every member is first divided by
the standard deviation of its own scores (:func:`score_scale`); after that an ensemble is a
weighted sum of score matrices.

:func:`greedy_select` is ensemble selection with replacement (Caruana et al., ICML 2004): start
empty, and in every round add the member whose addition gives the best validation metric, the
same member possibly again (which raises its weight); stop when no addition improves it. The
weights are the pick counts over the total. Only validation users are read, so the test split
stays untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from recx.evaluate.metrics import metrics_from_ranks, target_ranks_indexed

_ROWS = 2048  # users per block while ranking: bounds the temporaries to ~10 M cells


def score_scale(scores: torch.Tensor, max_users: int = 2048) -> float:
    """1 / standard deviation of scores [U, N+1] over items 1..N, read on the first ``max_users`` rows.

    A model whose scores are all equal has no ranking to contribute and raises ValueError.
    """
    std = float(scores[:max_users, 1:].double().std())
    if not np.isfinite(std) or std <= 0.0:
        raise ValueError("the member's scores do not vary over the catalog; it cannot rank")
    return 1.0 / std


def metric_of(scores: torch.Tensor, targets: torch.Tensor, metric: str, excluded: torch.Tensor | None = None) -> float:
    """Mean ``metric`` (e.g. ``ndcg@10``, ``hr@10``, ``mrr``) of scores [U, N+1] for targets [U].

    Pessimistic ties and the ranking of ``recx eval`` (``target_ranks_indexed``); ``excluded``
    [U, L] int64 item indices per user, 0 = unused slot (history excluded; see
    ``retrieval.exclusion_lists`` / ``pad_lists``).
    """
    k = int(metric.split("@")[1]) if "@" in metric else 10
    ranks = [
        target_ranks_indexed(scores[lo : lo + _ROWS], targets[lo : lo + _ROWS], None if excluded is None else excluded[lo : lo + _ROWS])
        for lo in range(0, len(targets), _ROWS)
    ]
    values = metrics_from_ranks(torch.cat(ranks).numpy(), (k,))
    if metric not in values:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(values)}")
    return float(values[metric])


@dataclass
class Selection:
    """The outcome of a selection: pick counts per member, weights (counts / total), the trace."""

    counts: list[int]
    metric: str
    value: float  # the validation metric of the selected ensemble
    alone: list[float] = field(default_factory=list)  # each member's metric on its own
    trace: list[dict] = field(default_factory=list)  # per round: {"round", "member", "value"}

    @property
    def weights(self) -> list[float]:
        total = sum(self.counts)
        return [c / total for c in self.counts]


def greedy_select(
    scores: Sequence[torch.Tensor],
    targets: torch.Tensor,
    metric: str = "ndcg@10",
    rounds: int = 25,
    excluded: torch.Tensor | None = None,
) -> Selection:
    """Ensemble selection with replacement over scaled member scores.

    Args:
        scores: M tensors [U, N+1], each member's scores already divided by its spread.
        targets: [U] item indices 1..N.
        rounds: the most picks; selection stops earlier once no pick improves the metric.
        excluded: [U, L] item indices removed from each user's ranking (see ``metric_of``).
    Ties between members go to the lower index, so a selection is deterministic.
    """
    if not scores:
        raise ValueError("an ensemble needs at least one member")
    shape = scores[0].shape
    if any(s.shape != shape for s in scores) or shape[0] != len(targets):
        raise ValueError(f"member scores must all be [U, N+1] with U = {len(targets)} targets; got {[tuple(s.shape) for s in scores]}")
    current = torch.zeros(shape, dtype=torch.float32)
    counts = [0] * len(scores)
    best, trace, alone = -np.inf, [], []
    for r in range(rounds):
        values = [metric_of(current + s, targets, metric, excluded) for s in scores]
        alone = alone or values  # the first round scores every member alone
        pick = int(np.argmax(values))
        if values[pick] <= best:
            break
        current += scores[pick]
        counts[pick] += 1
        best = values[pick]
        trace.append({"round": r, "member": pick, "value": best})
    return Selection(counts, metric, float(best), alone, trace)


def equal_select(scores: Sequence[torch.Tensor], targets: torch.Tensor, metric: str = "ndcg@10", excluded: torch.Tensor | None = None) -> Selection:
    """Every member once: the plain average of scaled scores (the baseline of greedy selection)."""
    total = torch.zeros(scores[0].shape, dtype=torch.float32)
    for s in scores:
        total += s
    alone = [metric_of(s, targets, metric, excluded) for s in scores]
    return Selection([1] * len(scores), metric, metric_of(total, targets, metric, excluded), alone)
