"""A post-LN transformer block (as SASRec and RecBole) over scaled_dot_product_attention."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from recx.trainer.dropout import Dropout, dropout


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, dropout_p: float, training: bool) -> torch.Tensor:
    """q [B, H, Lq, d], k and v [B, H, L, d], allowed [B, 1, Lq, L] bool -> [B, H, Lq, d].

    ``F.scaled_dot_product_attention``, except when training on CPU with attention dropout:
    torch then runs its math path, whose dropout mask costs more than the attention itself at
    hidden 64; this is the same math with recx's cheaper mask (recx/trainer/dropout.py)."""
    if not training or dropout_p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p if training else 0.0)
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # every row allows its own position
    return dropout(weights, dropout_p, True) @ v


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, inner: int | None = None, eps: float = 1e-12):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, inner or 4 * dim), nn.GELU(), nn.Linear(inner or 4 * dim, dim))
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.dropout = Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x [B, L, D]; allowed [B, 1, L, L] bool (query attends to key where True) -> [B, L, D].

        ``last_only``: only the last position queries -> [B, 1, D], equal to the full output's
        last row; every position still serves as key and value (a user's state at ranking time)."""
        B, L, D = x.shape
        if last_only:
            # the query projection and everything after attention run on one position, not L
            k, v = F.linear(x, self.qkv.weight[D:], self.qkv.bias[D:]).view(B, L, 2, self.heads, D // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            x = x[:, -1:]
            q = F.linear(x, self.qkv.weight[:D], self.qkv.bias[:D]).view(B, 1, self.heads, D // self.heads).transpose(1, 2)
            allowed = allowed[:, :, -1:]
        else:
            # unbind, not tuple-unpacking a tensor: keeps the block scriptable (recx export)
            q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        h = attention(q, k, v, allowed, self.attn_dropout, self.training)
        h = h.transpose(1, 2).reshape(B, x.shape[1], D)
        x = self.norm1(x + self.dropout(self.out(h)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class PositionalBlocks(nn.Module):
    """What SASRec and BERT4Rec share: learned positions (left padding: the last position is
    always the newest item) -> LayerNorm -> dropout -> transformer blocks."""

    def __init__(self, dim: int, layers: int, heads: int, dropout: float, max_len: int):
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, dropout) for _ in range(layers))

    def run_blocks(self, item_vectors: torch.Tensor, allowed: torch.Tensor, last_only: bool) -> torch.Tensor:
        """item_vectors [B, L, D], allowed [B, 1, L, L] -> [B, L, D], or [B, 1, D] (the last
        position's state, which the last block computes for that position alone) when ``last_only``."""
        L = item_vectors.shape[1]
        x = self.dropout(self.norm(item_vectors + self.position.weight[-L:]))
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, allowed, last_only and i == last)
        return x


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
