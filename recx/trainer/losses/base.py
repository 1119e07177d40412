"""What every loss receives.

A loss scores user states against item vectors.  It gets the states, the batch (inputs,
targets, row ids) and an ``embed`` callable that returns item vectors for any index tensor,
so a loss asks only for the items it needs (cheap for an ID table, essential for an
end-to-end encoder), and ``table()`` when it needs the whole catalog.  A model with a history
term (recx/trainer/history.py) also passes its prefix scores; the losses that accept them
(config.HISTORY_LOSSES) add them to the history items' logits (linear_softmax.py TermScores).
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import nn

from recx.trainer.data import Batch
from recx.trainer.losses.similarity import rowwise_similarity, similarity

__all__ = ["EmbedFn", "ItemVectors", "SequenceLoss", "rowwise_similarity", "similarity", "target_positions"]

EmbedFn = Callable[[torch.Tensor], torch.Tensor]  # item indices [...] -> vectors [..., D]


class ItemVectors(Protocol):
    def __call__(self, items: torch.Tensor) -> torch.Tensor: ...

    def table(self) -> torch.Tensor:
        """[N+1, D] vectors of every item (row 0 = padding)."""
        ...


class SequenceLoss(nn.Module):
    """Base class: ``forward(states [B, L, D], batch, items, history [B, L, L] | None) -> scalar``
    mean over real targets; ``history`` only for the losses in config.HISTORY_LOSSES."""

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def target_positions(targets: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: positions that have a real next item to predict."""
    return targets > 0
