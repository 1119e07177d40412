"""A post-LN transformer block (as SASRec and RecBole) over scaled_dot_product_attention."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, inner: int | None = None, eps: float = 1e-12):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, inner or 4 * dim), nn.GELU(), nn.Linear(inner or 4 * dim, dim))
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """x [B, L, D]; allowed [B, 1, L, L] bool (query attends to key where True)."""
        B, L, D = x.shape
        # unbind, not tuple-unpacking a tensor: keeps the block scriptable (recx export)
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=self.attn_dropout if self.training else 0.0)
        h = h.transpose(1, 2).reshape(B, L, D)
        x = self.norm1(x + self.dropout(self.out(h)))
        return self.norm2(x + self.dropout(self.ffn(x)))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """RecBole/BERT init: N(0, std) for linear and embedding weights, zero biases, unit norms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
