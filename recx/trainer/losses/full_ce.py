"""Softmax cross-entropy over the whole catalog (SASRec/RecBole "CE")."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, similarity, target_positions


class FullCrossEntropy(SequenceLoss):
    """-log softmax over items 1..N of the target's logit, averaged over real positions."""

    def __init__(self, temperature: float = 0.0):
        super().__init__()
        self.temperature = temperature

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors) -> torch.Tensor:
        keep = target_positions(batch.targets)  # [B, L]
        h = states[keep]  # [P, D]
        table = items.table()[1:]  # [N, D]; padding is never a candidate
        logits = similarity(h, table, self.temperature)  # [P, N] fp32
        return F.cross_entropy(logits, batch.targets[keep] - 1)
