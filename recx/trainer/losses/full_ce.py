"""Softmax cross-entropy over the whole catalog (SASRec/RecBole "CE")."""

from __future__ import annotations

import torch

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, target_positions
from recx.trainer.losses.linear_softmax import TermScores, linear_softmax_cross_entropy


class FullCrossEntropy(SequenceLoss):
    """-log softmax over items 1..N of the target's logit, averaged over real positions (the
    history items' logits gain the model's history term, when it has one)."""

    def __init__(self, temperature: float = 0.0, history_gradient: str = "term"):
        super().__init__()
        self.temperature = temperature
        self.history_gradient = history_gradient

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:
        keep = target_positions(batch.targets)  # [B, L]
        table = items.table()[1:]  # [N, D]; padding is never a candidate
        target_columns = batch.targets[keep] - 1
        term = None
        if history is not None:  # the full softmax masks no item, with or without a term
            row, pos = keep.nonzero(as_tuple=True)  # history [B, L, L]; item i is column i - 1, padding column N
            columns = torch.where(batch.inputs > 0, batch.inputs - 1, table.shape[0])[row]  # [P, L]
            term = TermScores(columns, history[row, pos], None, self.history_gradient)
        return linear_softmax_cross_entropy(states[keep], table, target_columns, self.temperature, term=term)
