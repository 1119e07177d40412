"""Repeat-aware scoring: a learned score term for candidates the user already has.

A dot product <h_u, e_j> cannot say "not what this user already has" (or "again, as they
usually do"), so a model may carry a :class:`HistoryTerm`: for every item j in the user's
history it adds

    bonus(u, j) = recency[bucket(d)] + count[bucket(c - 1)] + item[j]

where d is how many items ago j last occurred (0 = the newest) and c how often it occurs.
``--history-term`` chooses how much of that is learned (each part not learned is one shared
scalar, so every mode has a global bias):

- ``bias``: one global bias;
- ``recency``: per recency bucket and per count bucket (log2 buckets);
- ``item``: recency and count, plus a per-item repeat propensity.

Items not in the history get nothing.  The term is trained inside the loss (the history items
are candidates there: negatives unless they are the target; recx/trainer/losses/linear_softmax.py
TermScores) and applied on every ranking path through :meth:`HistoryTerm.scores`
(:class:`recx.evaluate.retrieval.HistoryScores`), so validation, ``recx eval``,
``recx recommend``, exports and ensembles rank the same way.  It reads the same window as the
sequence model: the last ``window`` items.

Parameters start at zero: an untrained term changes no score.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from recx.evaluate.retrieval import HistoryScores
from recx.trainer.config import HISTORY_TERMS
from recx.trainer.data import left_pad

RECENCY_BUCKETS = 8  # d = 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+
COUNT_BUCKETS = 5  # c = 1, 2, 3-4, 5-8, 9+


def log_bucket(x: torch.Tensor, buckets: int) -> torch.Tensor:
    """0 for x <= 0, else floor(log2 x) + 1, capped at ``buckets - 1`` (int64, same shape)."""
    b = torch.floor(torch.log2(x.clamp(min=1).float())).long() + 1
    return torch.where(x > 0, b, torch.zeros_like(b)).clamp(max=buckets - 1)


class HistoryTerm(nn.Module):
    """The learned history score; see the module doc.

    Args:
        mode: bias | recency | item (``off`` builds none: see :func:`build_history_term`).
        num_items: N (the item propensity table has N+1 rows; row 0 padding).
        window: the last ``window`` history items are read (the sequence model's --max-len).
    """

    def __init__(self, mode: str, num_items: int, window: int):
        super().__init__()
        if mode not in HISTORY_TERMS[1:]:
            raise ValueError(f"history term {mode!r}: expected one of {', '.join(HISTORY_TERMS[1:])}")
        self.mode = mode
        self.window = int(window)
        learned = mode in ("recency", "item")
        self.recency = nn.Parameter(torch.zeros(RECENCY_BUCKETS if learned else 1))
        self.count = nn.Parameter(torch.zeros(COUNT_BUCKETS if learned else 1))
        self.item = nn.Parameter(torch.zeros(num_items + 1 if mode == "item" else 1))
        self.per_item = 1 if mode == "item" else 0  # 0: every item reads row 0, one shared scalar
        # whether rankings add the term: training always learns it; with --history-gradient term
        # (the encoder trains as without a term) validation decides whether it helps (loop.py)
        self.register_buffer("active", torch.ones((), dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        state_dict.setdefault(prefix + "active", torch.ones((), dtype=torch.bool))  # weights saved before the flag: active
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    def _value(self, distance: torch.Tensor, count: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Bonus of items at ``distance`` (0 = newest) occurring ``count`` times (same shapes) -> fp32."""
        return (self.recency[log_bucket(distance, self.recency.numel())]
                + self.count[log_bucket(count - 1, self.count.numel())]
                + self.item[items * self.per_item])

    def prefix_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Training form.  inputs [B, L] item indices (0 = padding; position t's history is
        ``inputs[:, :t+1]``) -> [B, L, L] fp32: ``out[b, t, p]`` is the bonus that the item at
        input position p gets when position t predicts; 0 unless p <= t, the input is an item,
        and p is that item's latest occurrence up to t (so each history item counts once)."""
        B, L = inputs.shape
        idx = torch.arange(L, device=inputs.device)
        same = (inputs.unsqueeze(2) == inputs.unsqueeze(1)) & (inputs > 0).unsqueeze(2)  # [B, p, p']
        later = same & (idx.view(1, 1, L) > idx.view(1, L, 1))
        following = torch.where(later, idx.view(1, 1, L), L).amin(2)  # [B, p]: next occurrence after p (L: none)
        counts = same.long().cumsum(2).transpose(1, 2)  # [B, t, p]: occurrences of item p in 0..t
        t, p = idx.view(1, L, 1), idx.view(1, 1, L)
        applies = (p <= t) & (following.unsqueeze(1) > t) & (inputs > 0).unsqueeze(1)  # [B, t, p]
        value = self._value((t - p).expand(B, L, L), counts, inputs.unsqueeze(1).expand(B, L, L))
        out = torch.where(applies, value, torch.zeros_like(value))
        assert out.shape == (B, L, L)
        return out

    @torch.jit.export
    def last_scores(self, padded: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Ranking form.  padded [U, W] left-padded histories, newest last -> (items [U, W]
        int64, each distinct history item once, 0 elsewhere; values [U, W] fp32 to add to
        their scores).  Equals ``prefix_scores(padded)[:, -1]`` at each item's latest slot
        (all zero while the term is not ``active``)."""
        U, W = padded.shape
        idx = torch.arange(W, device=padded.device)
        # sorted by item, each item's slots stay in order: a run per item, its last slot the
        # latest; O(W log W) a history where comparing every pair of slots was O(W^2)
        items_sorted, order = torch.sort(padded, dim=1, stable=True)  # [U, W]
        differs = items_sorted[:, 1:] != items_sorted[:, :-1]  # [U, W-1]
        run_end = torch.cat([differs, torch.ones_like(differs[:, :1])], dim=1)  # [U, W]
        run = torch.cat([torch.zeros_like(differs[:, :1]), differs], dim=1).long().cumsum(1)  # [U, W] run index
        run_size = torch.zeros_like(run).scatter_add_(1, run, torch.ones_like(run))  # [U, W] slots per run index
        latest = torch.zeros_like(run_end).scatter_(1, order, run_end) & (padded > 0) & self.active  # [U, p]
        count = torch.zeros_like(run).scatter_(1, order, run_size.gather(1, run))  # [U, p] occurrences of p's item
        value = self._value((W - 1 - idx).view(1, W).expand(U, W), count, padded)
        items = torch.where(latest, padded, torch.zeros_like(padded))
        return items, torch.where(latest, value, torch.zeros_like(value))

    def scores(self, histories: Sequence[np.ndarray], batch_size: int = 4096) -> HistoryScores:
        """The term for each history of item indices (oldest first): what rankings add."""
        return history_scores(self.last_scores, histories, self.window, batch_size, self.recency.device)

    def learned(self) -> dict[str, list[float]]:
        """The term's values (for run summaries and the results notes; in ``bias`` mode the
        three shared scalars sum to the global bias)."""
        return {"active": [float(self.is_active)], "recency": self.recency.detach().cpu().tolist(), "count": self.count.detach().cpu().tolist(),
                **({"item_mean": [float(self.item[1:].detach().mean())]} if self.mode == "item" else {"item": self.item.detach().cpu().tolist()})}


@torch.no_grad()
def history_scores(last_scores: Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]], histories: Sequence[np.ndarray],
                   window: int, batch_size: int = 4096, device: torch.device | str = "cpu") -> HistoryScores:
    """HistoryScores of histories (item indices, oldest first) through a term's ``last_scores``
    (a HistoryTerm's, or an exported encoder's), ``batch_size`` histories at a time."""
    padded = torch.from_numpy(left_pad(histories, window))
    items, values = [np.zeros((0, window), np.int64)], [np.zeros((0, window), np.float32)]
    for lo in range(0, len(padded), batch_size):
        i, v = last_scores(padded[lo : lo + batch_size].to(device))
        items.append(i.cpu().numpy())
        values.append(v.float().cpu().numpy())
    return HistoryScores(np.concatenate(items), np.concatenate(values))


def build_history_term(mode: str, num_items: int, window: int) -> HistoryTerm | None:
    """The term ``--history-term`` asks for, or None for ``off``."""
    return None if mode == "off" else HistoryTerm(mode, num_items, window)
