"""open_clip models: image and text towers that embed into one space (L2-normalised)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

import recx  # noqa: F401 - installs the torchvision import guard before open_clip
from recx.featurize.base import Encoder
from recx.featurize.image import ImageTransform
from recx.featurize.weights import Weights, WeightsUnavailableError, download_error, hub_cache_dir, hub_endpoint, hub_progress, note


def open_clip_pretrained(arch: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained config for ``arch`` / ``tag`` ({} if open_clip does not know the pair)."""
    import open_clip

    return dict(open_clip.get_pretrained_cfg(arch, tag) or {})


def open_clip_hub_files(cfg: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(hub repo, candidate checkpoint files in open_clip's order of preference) for a pretrained config, or None.

    Mirrors open_clip's ``download_pretrained``: ``hf_hub`` is ``org/name/`` (default file
    ``open_clip_pytorch_model.bin``) or ``org/name/file``; a ``.safetensors`` twin is preferred.
    """
    hub = str(cfg.get("hf_hub", "")).strip()
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    filename = filename or "open_clip_pytorch_model.bin"
    safe = ["open_clip_model.safetensors"] if filename == "open_clip_pytorch_model.bin" else [filename.rsplit(".", 1)[0] + ".safetensors"]
    return repo, [f for f in safe if f != filename] + [filename]


def _cached(repo: str, files: list[str]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for f in files:
        try:
            hit = try_to_load_from_cache(repo, f)
        except Exception:  # noqa: BLE001 - not cached
            hit = None
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def _revision_of(path: Path) -> str:
    """The commit hash of a file in the HF cache (.../snapshots/<commit>/file), else the file's name."""
    return path.parent.name if path.parent.parent.name == "snapshots" else path.name


def open_clip_checkpoint(arch: str, tag: str) -> Path | None:
    """The cached checkpoint file of an open_clip pretrained tag, or None (never downloads)."""
    found = open_clip_hub_files(open_clip_pretrained(arch, tag))
    return _cached(*found) if found else None


def open_clip_weights(arch: str, tag: str, model_name: str, *, offline: bool = False, progress: bool = True) -> Weights:
    """The checkpoint of an open_clip pretrained tag: from the HF cache, else through open_clip's own download."""
    import open_clip

    cfg = open_clip_pretrained(arch, tag)
    found = open_clip_hub_files(cfg)
    if not cfg or (found is None and not cfg.get("url")):
        raise WeightsUnavailableError(f"{model_name}: open_clip has no pretrained tag {tag!r} for {arch}; pass --model-path FILE")
    where = found[0] if found else str(cfg.get("url"))
    if found is not None:
        hit = _cached(*found)
        if hit is not None:
            return Weights(hit, _revision_of(hit))
    if offline:
        raise WeightsUnavailableError(
            f"{model_name}: open_clip weights {arch}/{tag} ({where}) are not in the Hugging Face cache {hub_cache_dir()} and "
            "offline mode is on (--offline / HF_HUB_OFFLINE=1), so recx does not download; run "
            f"open_clip.create_model_and_transforms({arch!r}, pretrained={tag!r}) on a connected machine and copy the "
            "cache here, pass --model-path FILE, or rerun without offline mode to download it"
        )
    note(f"downloading {model_name} weights ({arch}/{tag}) from {hub_endpoint() + '/' + where if found else where} "
         "through open_clip (once; later runs use the cache)", progress)
    try:
        if found is not None:
            # ask the hub once first: an unreachable hub, a wrong repo or a refused token fails here at once,
            # where hf_hub_download (inside open_clip) would retry with back-off for the better part of a minute
            from huggingface_hub import HfApi

            HfApi().model_info(found[0])
        with hub_progress(progress):
            target = open_clip.pretrained.download_pretrained(cfg)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line
        raise WeightsUnavailableError(download_error(model_name, where, e)) from e
    if not target or not os.path.isfile(target):
        raise WeightsUnavailableError(f"{model_name}: open_clip gave no checkpoint for {arch}/{tag}; pass --model-path FILE")
    return Weights(Path(target), _revision_of(Path(target)))


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
