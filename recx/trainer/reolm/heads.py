"""Pretraining heads: masked-token prediction over item text, item-image alignment."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from recx.trainer.losses.softmax import softmax_cross_entropy

# BERT's MLM head in a transformers checkpoint: what the tied head's parameters are named there
_BERT_HEAD = {
    "dense.weight": "cls.predictions.transform.dense.weight",
    "dense.bias": "cls.predictions.transform.dense.bias",
    "norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "bias": "cls.predictions.bias",
}


class TiedMLMHead(nn.Module):
    """BERT-style MLM head whose decoder is the LM's word-embedding matrix (tied).

    forward(hidden [M, H], word_embeddings [V, H]) -> logits [M, V].
    """

    def __init__(self, hidden: int, vocab: int, eps: float = 1e-12):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.dense(hidden)))
        return h @ word_embeddings.T.to(h.dtype) + self.bias.to(h.dtype)

    def load_from_backbone(self, folder: Path) -> bool:
        """Take the backbone checkpoint's own MLM head when it ships one (BERT naming); returns
        whether it did (sentence-transformers folders such as all-MiniLM-L6-v2 have none)."""
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            return False
        from safetensors import safe_open

        found: dict[str, torch.Tensor] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as st:
                keys = set(st.keys())
                for ours, theirs in _BERT_HEAD.items():
                    for k in (theirs, f"bert.{theirs}"):
                        if k in keys:
                            found[ours] = st.get_tensor(k)
        own = self.state_dict()
        if set(found) != set(own) or any(found[k].shape != own[k].shape for k in own):
            return False
        self.load_state_dict(found)
        return True


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, ratio: float, mask_id: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide ``ratio`` of the maskable tokens (at least one per row that has any) behind ``mask_id``.

    input_ids, maskable [B, T] -> (masked ids [B, T], chosen [B, T] bool).
    """
    noise = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)
    chosen = (noise < ratio) & maskable
    # rows where chance picked nothing: take the maskable token of least noise
    none = ~chosen.any(1) & maskable.any(1)
    if none.any():
        first = torch.where(maskable, noise, torch.full_like(noise, 2.0)).argmin(1)
        chosen[none.nonzero(as_tuple=True)[0], first[none]] = True
    return torch.where(chosen, torch.full_like(input_ids, mask_id), input_ids), chosen


def alignment_loss(text: torch.Tensor, image: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between matching rows of text [M, D] and image [M, D] vectors (M >= 2)."""
    t = F.normalize(text.float(), dim=-1)
    i = F.normalize(image.float(), dim=-1)
    logits = t @ i.T / temperature
    labels = torch.arange(len(t), device=t.device)
    return 0.5 * (softmax_cross_entropy(logits, labels) + softmax_cross_entropy(logits.T, labels))
