"""Binary cross-entropy with one sampled negative per position (the original SASRec loss)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, rowwise_similarity, target_positions
from recx.trainer.losses.samplers import UnseenNegatives, sample_excluding

__all__ = ["BinaryCrossEntropy", "sample_excluding"]


class BinaryCrossEntropy(SequenceLoss):
    """-log sigma(s_pos) - log(1 - sigma(s_neg)) per real position, negatives uniform over the
    items the user never interacted with (in training)."""

    def __init__(self, item_mask_fn, seed: int = 0):
        """``item_mask_fn(rows [B]) -> [B, N+1] bool`` gives each row's user items."""
        super().__init__()
        self.negatives = UnseenNegatives(item_mask_fn, seed)

    def get_extra_state(self):
        return self.negatives.state()

    def set_extra_state(self, state):
        self.negatives.load_state(state)

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:
        assert history is None, f"{type(self).__name__} does not score a history term"
        keep = target_positions(batch.targets)
        negatives = self.negatives.sample(batch.rows, tuple(batch.targets.shape)).to(batch.targets.device)
        h = states[keep]  # [P, D]
        pos = rowwise_similarity(h, items(batch.targets[keep]), 0.0)  # [P]
        neg = rowwise_similarity(h, items(negatives[keep]), 0.0)  # [P]
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
