"""What every loss receives.

A loss scores user states against item vectors.  It gets the states, the batch (inputs,
targets, row ids) and an ``embed`` callable that returns item vectors for any index tensor,
so a loss asks only for the items it needs (cheap for an ID table, essential for an
end-to-end encoder), and ``table()`` when it needs the whole catalog.  A model with a history
term (recx/trainer/history.py) also passes its prefix scores; the losses that accept them
(config.HISTORY_LOSSES) add them to the history items' logits (:func:`history_cross_entropy`).
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import nn

from recx.trainer.config import HISTORY_GRADIENTS
from recx.trainer.data import Batch
from recx.trainer.losses.similarity import rowwise_similarity, similarity
from recx.trainer.losses.softmax import softmax_cross_entropy

__all__ = ["EmbedFn", "ItemVectors", "SequenceLoss", "add_history_scores", "history_cross_entropy", "rowwise_similarity", "similarity",
           "target_positions"]

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


def add_history_scores(logits: torch.Tensor, columns: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """Logits plus each prediction's history term.

    logits [P, C]; columns [P, L]: the logit column of each input item of the prediction's
    row (C for padding or an item with no column); history [P, L]: the term of those items at
    the prediction's position (0 where it does not apply) -> [P, C] (out of place).
    """
    P, C = logits.shape
    assert columns.shape == history.shape and columns.shape[0] == P, (tuple(columns.shape), tuple(history.shape), P)
    wide = torch.cat([logits, logits.new_zeros(P, 1)], dim=1)
    return wide.scatter_add(1, columns, history.to(logits.dtype))[:, :C]


def history_cross_entropy(logits: torch.Tensor, target_columns: torch.Tensor, plain_mask: torch.Tensor | None,
                          history_mask: torch.Tensor | None, columns: torch.Tensor, history: torch.Tensor, gradient: str) -> torch.Tensor:
    """The cross-entropy of a loss whose model has a history term.

    logits [P, C] (the model's scores of the candidates, before any term), target_columns [P];
    plain_mask [P, C]: what the loss masks without a term (the user's own items but the target);
    history_mask [P, C]: what it masks with one (the seen items are candidates, scored with the
    term); None: nothing; columns / history [P, L]: as :func:`add_history_scores`.

    ``all``: one softmax in which the seen items are candidates, so the encoder learns from them
    as negatives too.  ``term``: the term-free loss, which alone trains the encoder (it learns
    exactly as without a term), plus the same softmax over the encoder's detached scores with
    the term added, which alone trains the term.  Returns the scalar loss.
    """
    def masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return x if mask is None else x.masked_fill(mask, float("-inf"))

    if gradient not in HISTORY_GRADIENTS:
        raise ValueError(f"history gradient {gradient!r}: expected one of {', '.join(HISTORY_GRADIENTS)}")
    if gradient == "all":
        return softmax_cross_entropy(masked(add_history_scores(logits, columns, history), history_mask), target_columns)
    plain = softmax_cross_entropy(masked(logits, plain_mask), target_columns)
    term = softmax_cross_entropy(masked(add_history_scores(logits.detach(), columns, history), history_mask), target_columns)
    return plain + term


def target_positions(targets: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: positions that have a real next item to predict."""
    return targets > 0
