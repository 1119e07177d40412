"""SASRec (Kang & McAuley 2018): a causal transformer over the item sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from recx.trainer.sequence.transformer import PositionalBlocks, init_weights

if TYPE_CHECKING:
    from recx.trainer.config import ModelConfig


def causal_allowed(padding: torch.Tensor) -> torch.Tensor:
    """Attention pattern for left-padded sequences.

    padding [B, L] bool (True = real item) -> [B, 1, L, L] bool: query q attends to key k when
    k <= q and k is a real item.  A padding query attends to itself so no softmax row is
    empty (its output is never used).
    """
    B, L = padding.shape
    causal = torch.ones(L, L, dtype=torch.bool, device=padding.device).tril()
    allowed = causal & padding.unsqueeze(1)  # [B, L, L]
    allowed = allowed | torch.eye(L, dtype=torch.bool, device=padding.device)
    return allowed.unsqueeze(1)


class SASRec(PositionalBlocks):
    """Item vectors + learned positions -> LayerNorm -> dropout -> causal transformer blocks.

    forward(item_vectors [B, L, D], padding [B, L] bool) -> states [B, L, D]; the state at t
    summarises items 0..t and predicts item t+1.  ``last_only``: [B, 1, D], the last state alone.
    """

    causal = True
    mask_vector = None  # causal: no masked positions

    def __init__(self, dim: int, layers: int = 2, heads: int = 2, dropout: float = 0.5, max_len: int = 50):
        super().__init__(dim, layers, heads, dropout, max_len)
        init_weights(self)

    @classmethod
    def from_config(cls, m: "ModelConfig") -> "SASRec":
        return cls(m.hidden, m.layers, m.heads, m.dropout, m.max_len)

    def forward(self, item_vectors: torch.Tensor, padding: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        return self.run_blocks(item_vectors, causal_allowed(padding), last_only)
