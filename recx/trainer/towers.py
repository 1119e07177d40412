"""Item towers: item indices -> vectors.

Every tower maps ``items [...]`` (int64, 0 = padding) to ``[..., D]`` and exposes ``table()``
([N+1, D], the catalog for scoring).  Padding always maps to the zero vector.

- :class:`IdTower`: a free embedding per item (N(0, 0.02) init, as RecBole; PyTorch's N(0, 1)
  default trains far worse).
- :class:`FeatureTower`: frozen features from an H5 store through an adapter (linear, MLP, or
  a UniSRec-style mixture of whitening experts), with a learned vector for items that lack
  the modality.
- :class:`FusionTower`: several towers combined by add, concat (+ projection) or a gate.
"""

from __future__ import annotations

import torch
from torch import nn

from recx.trainer.dropout import Dropout


class ItemTower(nn.Module):
    """items [...] int64 (0 = padding) -> vectors [..., dim]; ``table()`` is every item's."""

    dim: int
    num_items: int
    # True when the tower runs an encoder in the step: the loop then memoizes it per step
    expensive: bool = False

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The parameters of pretrained encoder blocks (their own learning rate and weight decay)."""
        return []

    def table(self) -> torch.Tensor:
        """[N+1, D] vectors of every item; row 0 is zeros."""
        return self(torch.arange(self.num_items + 1, device=self._device()))

    def _device(self) -> torch.device:
        return next(self.parameters()).device


class IdTower(ItemTower):
    def __init__(self, num_items: int, dim: int, init_std: float = 0.02):
        super().__init__()
        self.num_items, self.dim = num_items, dim
        self.embedding = nn.Embedding(num_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=init_std)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.embedding(items)

    def table(self) -> torch.Tensor:
        return self.embedding.weight


class WhiteningExperts(nn.Module):
    """UniSRec's MoE adapter: K parametric whitening experts, (x - b_k) W_k, mixed by a softmax gate."""

    def __init__(self, in_dim: int, out_dim: int, num_experts: int = 8, dropout: float = 0.2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_experts, in_dim))
        self.weight = nn.Parameter(torch.empty(num_experts, in_dim, out_dim))
        nn.init.normal_(self.weight, std=0.02)
        self.gate = nn.Linear(in_dim, num_experts, bias=False)
        nn.init.zeros_(self.gate.weight)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., out]."""
        x = self.dropout(x)
        experts = torch.einsum("...ki,kio->...ko", x.unsqueeze(-2) - self.bias, self.weight)  # [..., K, out]
        gate = torch.softmax(self.gate(x), dim=-1).unsqueeze(-1)  # [..., K, 1]
        return (gate * experts).sum(-2)


def make_adapter(kind: str, in_dim: int, out_dim: int, dropout: float = 0.1) -> nn.Module:
    if kind == "linear":
        layer = nn.Linear(in_dim, out_dim)
        nn.init.normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
        return layer
    if kind == "mlp":
        mlp = nn.Sequential(nn.Linear(in_dim, 4 * out_dim), nn.GELU(), Dropout(dropout), nn.Linear(4 * out_dim, out_dim))
        for m in mlp:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        return mlp
    if kind == "moe":
        return WhiteningExperts(in_dim, out_dim, dropout=dropout)
    raise ValueError(f"unknown adapter {kind!r}; expected linear, mlp or moe")


def whiten(features: torch.Tensor, present: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """PCA-whitened features (BERT-whitening): centred on the present items' mean, rotated onto
    their covariance's eigenvectors and scaled to unit variance per direction, then by
    1/sqrt(F) so a row's norm stays near 1; absent rows stay zero.  Directions the present items
    barely span (eigenvalue under ``eps`` x the largest, e.g. a catalog smaller than F) are
    dropped (zero) rather than blown up into noise.

    Sentence embeddings crowd into a narrow cone (every pair has a high cosine), which a linear
    adapter trained from N(0, 0.02) has to undo; whitening spreads them out before training.
    features [N+1, F], present [N+1] bool -> [N+1, F] float32.
    """
    x = features[present].double()
    if len(x) < 2:
        return features.float()
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / (len(x) - 1)
    eigvals, eigvecs = torch.linalg.eigh(cov)
    spanned = eigvals > eps * eigvals.max().clamp(min=1e-30)
    scale = torch.where(spanned, eigvals.clamp(min=1e-30).rsqrt(), torch.zeros_like(eigvals))
    transform = eigvecs * scale / features.shape[1] ** 0.5  # [F, F]
    out = ((features.double() - mean) @ transform).float()
    out[~present] = 0.0
    return out


class FeatureTower(ItemTower):
    """Frozen store features -> adapter -> D; items without the modality get a learned vector.

    Args:
        features: [N+1, F] float features (row 0 = padding).
        present: [N+1] bool, the item has this modality.
        whitened: PCA-whiten the features first (:func:`whiten`).
    """

    def __init__(self, features: torch.Tensor, present: torch.Tensor, dim: int, adapter: str = "linear", whitened: bool = False):
        super().__init__()
        self.num_items, self.dim = features.shape[0] - 1, dim
        present = present.bool().clone()
        present[0] = False
        if whitened:
            features = whiten(features, present)
        self.register_buffer("features", features.float(), persistent=False)
        self.register_buffer("present", present, persistent=False)
        self.adapter = make_adapter(adapter, features.shape[1], dim)
        self.missing = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        out = self.adapter(self.features[items])
        out = torch.where(self.present[items].unsqueeze(-1), out, self.missing.to(out.dtype))
        return out * (items > 0).unsqueeze(-1).to(out.dtype)


class FusionTower(ItemTower):
    """Combine towers: ``add`` (sum), ``concat`` (concat -> linear), ``gated`` (softmax gate per item)."""

    def __init__(self, towers: list[ItemTower], mode: str = "add"):
        super().__init__()
        if mode not in ("add", "concat", "gated"):
            raise ValueError(f"unknown fusion {mode!r}; expected add, concat or gated")
        self.towers = nn.ModuleList(towers)
        self.mode = mode
        self.num_items, self.dim = towers[0].num_items, towers[0].dim
        k = len(towers)
        if mode == "concat":
            self.project = nn.Linear(k * self.dim, self.dim)
            nn.init.normal_(self.project.weight, std=0.02)
            nn.init.zeros_(self.project.bias)
        elif mode == "gated":
            self.gate = nn.Linear(k * self.dim, k)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)

    @property
    def expensive(self) -> bool:
        """True when a part runs an encoder in the step (id+topk): the loop then memoizes the whole
        fusion per step, so each distinct item is encoded once and under the step's autocast."""
        return any(t.expensive for t in self.towers)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return [p for t in self.towers for p in t.pretrained_parameters()]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        parts = [t(items) for t in self.towers]
        if self.mode == "add":
            return torch.stack(parts).sum(0)
        cat = torch.cat(parts, dim=-1)
        if self.mode == "concat":
            return self.project(cat) * (items > 0).unsqueeze(-1).to(cat.dtype)
        gate = torch.softmax(self.gate(cat), dim=-1)  # [..., k]
        return (torch.stack(parts, dim=-1) * gate.unsqueeze(-2)).sum(-1)
