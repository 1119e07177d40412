"""BERT4Rec (Sun et al. 2019): a bidirectional transformer trained by masked item prediction.

Training hides a random ``mask_ratio`` of each row's items behind a learned mask vector and
predicts them; at evaluation a mask position is appended after the history and its state
predicts the next item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from recx.trainer.data import Batch
from recx.trainer.sequence.transformer import PositionalBlocks, init_weights

if TYPE_CHECKING:
    from recx.trainer.config import ModelConfig


class BERT4Rec(PositionalBlocks):
    """forward(item_vectors [B, L, D], padding [B, L] bool) -> states [B, L, D]
    (``last_only``: [B, 1, D], the last state alone)."""

    causal = False

    def __init__(self, dim: int, layers: int = 2, heads: int = 2, dropout: float = 0.2, max_len: int = 50, mask_ratio: float = 0.2):
        super().__init__(dim, layers, heads, dropout, max_len)
        self.mask_vector = nn.Parameter(torch.zeros(dim))
        self.mask_ratio = mask_ratio
        init_weights(self)
        nn.init.normal_(self.mask_vector, std=0.02)

    @classmethod
    def from_config(cls, m: "ModelConfig") -> "BERT4Rec":
        return cls(m.hidden, m.layers, m.heads, m.dropout, m.max_len, m.mask_ratio)

    def forward(self, item_vectors: torch.Tensor, padding: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        L = item_vectors.shape[1]
        allowed = (padding.unsqueeze(1) | torch.eye(L, dtype=torch.bool, device=padding.device)).unsqueeze(1)  # [B, 1, L, L]
        return self.run_blocks(item_vectors, allowed, last_only)

    def mask_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Cloze batch from a seq2seq batch: the row's items, ``mask_ratio`` of them hidden.

        Returns inputs = the original items [B, L] (losses read candidates from them),
        ``masked`` [B, L] bool (the model swaps in the mask vector there) and targets = the
        hidden items (0 elsewhere).  Every row gets at least one masked item, and its last
        item is masked with the same probability, so training also sees the eval pattern.
        """
        items = batch.targets  # the row's last L items
        real = items > 0
        draw = torch.rand(items.shape, generator=generator).to(items.device) < self.mask_ratio
        masked = draw & real
        none = ~masked.any(1)
        masked[none, -1] = True  # rows are left-padded, so the last position is real
        return Batch(items, torch.where(masked, items, torch.zeros_like(items)), batch.rows, masked)
