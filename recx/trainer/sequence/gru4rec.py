"""GRU4Rec (Hidasi et al. 2016, seq2seq form as in RecBole): item vectors -> GRU -> projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recx.trainer.dropout import Dropout
from recx.trainer.sequence.transformer import init_weights

if TYPE_CHECKING:
    from recx.trainer.config import ModelConfig


def _left_to_right_index(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """[B, L] gather index that moves a right-aligned row's real items to the front."""
    return (torch.arange(L, device=lengths.device).unsqueeze(0) + (L - lengths).unsqueeze(1)) % L


class GRU4Rec(nn.Module):
    """forward(item_vectors [B, L, D], padding [B, L] bool) -> states [B, L, D]
    (``last_only``: [B, 1, D], the last state alone).

    GRU -> linear projection -> LayerNorm (the norm is recx's addition to RecBole's GRU4Rec).

    Sequences arrive left-padded; the GRU must not run over the padding (its state would drift
    with the amount of padding), so rows are re-aligned to the left and packed.
    """

    causal = True
    mask_vector = None  # causal: no masked positions

    def __init__(self, dim: int, layers: int = 1, dropout: float = 0.3):
        super().__init__()
        self.dropout = Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=layers, batch_first=True, bias=False)
        self.project = nn.Linear(dim, dim)
        # without it the states stay tiny against the tied N(0, 0.02) item table and training
        # stalls (synthetic catalog, 8 epochs: valid NDCG@10 0.039 without, 0.083 with)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        init_weights(self)
        for name, p in self.gru.named_parameters():
            nn.init.xavier_uniform_(p) if p.dim() == 2 else nn.init.zeros_(p)

    @classmethod
    def from_config(cls, m: "ModelConfig") -> "GRU4Rec":
        return cls(m.hidden, m.layers, m.dropout)

    def forward(self, item_vectors: torch.Tensor, padding: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        B, L, D = item_vectors.shape
        lengths = padding.sum(1).clamp(min=1)
        to_left = _left_to_right_index(lengths, L)
        x = self.dropout(item_vectors).gather(1, to_left.unsqueeze(-1).expand(B, L, D))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)
        to_right = (torch.arange(L, device=lengths.device).unsqueeze(0) - (L - lengths).unsqueeze(1)) % L
        out = out.gather(1, to_right.unsqueeze(-1).expand(B, L, D))
        if last_only:
            out = out[:, -1:]
        return self.norm(self.project(out))
