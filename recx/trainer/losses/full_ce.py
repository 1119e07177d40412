"""Softmax cross-entropy over the whole catalog (SASRec/RecBole "CE")."""

from __future__ import annotations

import torch

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, history_cross_entropy, similarity, target_positions
from recx.trainer.losses.linear_softmax import linear_softmax_cross_entropy


class FullCrossEntropy(SequenceLoss):
    """-log softmax over items 1..N of the target's logit, averaged over real positions (the
    history items' logits gain the model's history term, when it has one)."""

    def __init__(self, temperature: float = 0.0, history_gradient: str = "term"):
        super().__init__()
        self.temperature = temperature
        self.history_gradient = history_gradient

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:
        keep = target_positions(batch.targets)  # [B, L]
        h = states[keep]  # [P, D]
        table = items.table()[1:]  # [N, D]; padding is never a candidate
        target_columns = batch.targets[keep] - 1
        if history is None:  # nothing to add to or mask in the logits: never build them whole
            return linear_softmax_cross_entropy(h, table, target_columns, self.temperature)
        logits = similarity(h, table, self.temperature)  # [P, N] fp32
        row, pos = keep.nonzero(as_tuple=True)  # history [B, L, L]; item i is column i - 1, padding column N
        columns = torch.where(batch.inputs > 0, batch.inputs - 1, table.shape[0])[row]  # [P, L]
        # the full softmax masks no item, with or without a term
        return history_cross_entropy(logits, target_columns, None, None, columns, history[row, pos], self.history_gradient)
