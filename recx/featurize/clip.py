"""open_clip models: image and text towers that embed into one space (L2-normalised)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

import recx  # noqa: F401 - installs the torchvision import guard before open_clip
from recx.featurize.base import Encoder
from recx.featurize.image import ImageTransform
from recx.featurize.weights import WEIGHT_SUFFIXES, hf_local_snapshot


def open_clip_checkpoint(arch: str, tag: str) -> Path | None:
    """The cached checkpoint file of an open_clip pretrained tag, or None (never downloads)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    repo = str(cfg.get("hf_hub", "")).strip("/")
    if not repo:
        return None
    snap = hf_local_snapshot(repo)
    if snap is None:
        return None
    files = sorted(f for f in snap.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.name.startswith("open_clip"))
    return files[0] if files else None


class OpenClipEncoder(Encoder):
    """One tower of an open_clip model: ``modality='image'`` (paths) or ``'text'`` (strings) -> [B, D], unit norm."""

    def __init__(self, model: nn.Module, tokenizer: Any, modality: str, *, name: str, source: str, weight_files: Sequence[Path]):
        if modality not in ("image", "text"):
            raise ValueError(f"CLIP modality must be image or text, not {modality!r}")
        super().__init__(name, source, weight_files, "proj")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.modality = modality
        self.normalize = True
        self.dim = int(model.text_projection.shape[1] if isinstance(model.text_projection, torch.Tensor) else model.text_projection.out_features)
        pp = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = model.visual.image_size
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.transform = ImageTransform(size, size, tuple(pp.get("mean", (0.48145466, 0.4578275, 0.40821073))),
                                        tuple(pp.get("std", (0.26862954, 0.26130258, 0.27577711))), pp.get("interpolation", "bicubic"))
        tower = "model.visual.transformer.resblocks" if modality == "image" else "model.transformer.resblocks"
        n = len(self.get_submodule(tower)) if _has(self, tower) else 0
        self._block_names = [f"{tower}.{i}" for i in range(n)]

    @property
    def preprocess_in_workers(self) -> bool:
        return self.modality == "image"

    def preprocess(self, raw_items: Sequence[str]) -> dict[str, torch.Tensor]:
        """image paths -> {pixel_values [B, 3, S, S]}; texts -> {input_ids [B, 77]}."""
        if self.modality == "image":
            return {"pixel_values": torch.stack([self.transform(p) for p in raw_items])}
        return {"input_ids": self.tokenizer(list(raw_items))}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch -> float32 [B, D], L2-normalised (the shared CLIP space)."""
        if self.modality == "image":
            out = self.model.encode_image(batch["pixel_values"])
        else:
            out = self.model.encode_text(batch["input_ids"])
        return nn.functional.normalize(out.float(), dim=-1)

    def config_attrs(self) -> dict[str, Any]:
        attrs = self.transform.attrs() if self.modality == "image" else {"max_length": int(getattr(self.model, "context_length", 77))}
        attrs["space"] = "clip"
        return attrs


def _has(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
        return True
    except AttributeError:
        return False


def load_open_clip(name: str, arch: str, checkpoint: Path, source: str, modality: str = "image") -> OpenClipEncoder:
    """An open_clip architecture with weights from a local checkpoint file."""
    import open_clip

    model = open_clip.create_model(arch, pretrained=str(checkpoint))
    tokenizer = open_clip.get_tokenizer(arch)
    return OpenClipEncoder(model, tokenizer, modality, name=name, source=source, weight_files=[checkpoint])
