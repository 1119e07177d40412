"""Binary cross-entropy with one sampled negative per position (the original SASRec loss)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, rowwise_similarity, target_positions


def sample_excluding(excluded: torch.Tensor, shape: tuple[int, int], generator: torch.Generator, rounds: int = 4) -> torch.Tensor:
    """Uniform items in 1..N, never one that ``excluded`` marks for the row.

    A few vectorised rejection rounds handle typical users; rows still holding excluded draws
    (users who saw most of the catalog) are then drawn exactly from their allowed items.

    Args:
        excluded: [B, N+1] bool, True for items row b must not draw (its user's items).
        shape: (B, L) of the result.
    Returns:
        [B, L] int64 item indices.
    """
    num_items = excluded.shape[1] - 1
    out = torch.randint(1, num_items + 1, shape, generator=generator)
    for _ in range(rounds):
        bad = excluded.gather(1, out)
        if not bad.any():
            return out
        out[bad] = torch.randint(1, num_items + 1, (int(bad.sum()),), generator=generator)
    bad = excluded.gather(1, out)
    rows = bad.any(1).nonzero().squeeze(1)
    allowed = (~excluded[rows]).float()
    allowed[:, 0] = 0.0
    if (allowed.sum(1) == 0).any():
        raise ValueError("cannot sample a negative: a user interacted with every item of the catalog")
    redraw = torch.multinomial(allowed, shape[1], replacement=True, generator=generator)  # [R, L]
    out[rows] = torch.where(bad[rows], redraw, out[rows])
    return out


class BinaryCrossEntropy(SequenceLoss):
    """-log sigma(s_pos) - log(1 - sigma(s_neg)) per real position, negatives uniform over the
    items the user never interacted with (in training)."""

    def __init__(self, item_mask_fn, seed: int = 0):
        """``item_mask_fn(rows [B]) -> [B, N+1] bool`` gives each row's user items."""
        super().__init__()
        self.item_mask_fn = item_mask_fn
        self.generator = torch.Generator().manual_seed(seed)

    def get_extra_state(self):
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state):
        self.generator.set_state(state["generator"])

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors) -> torch.Tensor:
        keep = target_positions(batch.targets)
        excluded = self.item_mask_fn(batch.rows)
        excluded[:, 0] = True
        negatives = sample_excluding(excluded, tuple(batch.targets.shape), self.generator).to(batch.targets.device)
        h = states[keep]  # [P, D]
        pos = rowwise_similarity(h, items(batch.targets[keep]), 0.0)  # [P]
        neg = rowwise_similarity(h, items(negatives[keep]), 0.0)  # [P]
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
