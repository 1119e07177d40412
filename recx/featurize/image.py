"""Image encoders (timm / torchvision CNNs, Hugging Face Swin and ViT-MAE) and PIL preprocessing.

Images are decoded and resized with PIL inside DataLoader workers (:class:`ImageTransform` is
picklable); torchvision.io is never used (its C++ ops do not load next to CPU torch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from recx.errors import RecxError
from recx.featurize.base import Encoder, masked_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageDecodeError(RecxError):
    """An image file exists but cannot be decoded; ``reason`` is the fault in one line."""

    def __init__(self, message: str, path: str = "", reason: str = ""):
        super().__init__(message)
        self.path = path
        self.reason = reason


def decode_fault(e: BaseException) -> str:
    """A PIL decoding exception as one line (its first line, else its type name)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class ImageTransform:
    """path -> float32 [3, size, size]: RGB, resize, center crop, scale to [0, 1], normalise.

    ``resize`` is the shorter side before the center crop; None resizes straight to size x size.
    """

    size: int = 224
    resize: int | None = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"

    def __call__(self, path: str) -> torch.Tensor:
        from PIL import Image

        resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[self.interpolation]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if self.resize is None:
                    im = im.resize((self.size, self.size), resample)
                else:
                    w, h = im.size
                    scale = self.resize / min(w, h)
                    im = im.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), resample)
                    w, h = im.size
                    left, top = (w - self.size) // 2, (h - self.size) // 2
                    im = im.crop((left, top, left + self.size, top + self.size))
                arr = np.asarray(im, dtype=np.float32)
        # PIL's faults on broken files: UnidentifiedImageError / "image file is truncated" (OSError),
        # DecompressionBombError, and SyntaxError / EOFError from some format plugins
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
            # PIL only says it cannot identify an empty file; the size is looked up on failure only
            reason = "empty file, 0 bytes" if os.path.isfile(path) and os.path.getsize(path) == 0 else decode_fault(e)
            raise ImageDecodeError(f"{path}: cannot decode image ({reason})", path, reason) from None
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).div_(255.0)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def attrs(self) -> dict[str, Any]:
        return {
            "image_size": self.size,
            "resize": -1 if self.resize is None else self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }


class ImageEncoder(Encoder):
    """Base for image encoders: ``preprocess`` decodes paths with an :class:`ImageTransform`."""

    modality = "image"

    def __init__(self, name: str, source: str, weight_files: Sequence[Path], pooling: str, transform: ImageTransform):
        super().__init__(name, source, weight_files, pooling)
        self.transform = transform

    @property
    def preprocess_in_workers(self) -> bool:
        return True

    def preprocess(self, raw_items: Sequence[str]) -> dict[str, torch.Tensor]:
        """image paths -> {pixel_values: float32 [B, 3, S, S]}."""
        return {"pixel_values": torch.stack([self.transform(p) for p in raw_items])}

    def config_attrs(self) -> dict[str, Any]:
        return self.transform.attrs()


class CNNEncoder(ImageEncoder):
    """A CNN whose classifier was removed: ``model(pixels)`` is the globally pooled feature [B, D].

    ``model(pixels)`` equals: the ``block_names`` in order (after a stem), then the ``head_names``,
    then a global average pool -- the split ``--cache-top-k`` relies on.
    """

    def __init__(
        self,
        model: nn.Module,
        dim: int,
        *,
        name: str,
        source: str,
        weight_files: Sequence[Path],
        transform: ImageTransform,
        block_names: Sequence[str],
        head_names: Sequence[str] = (),
    ):
        super().__init__(name, source, weight_files, "avg", transform)
        self.model = model.eval()
        self.dim = int(dim)
        self._block_names = [f"model.{n}" for n in block_names]
        # modules between the last block and the global average pool (EfficientNet's conv head)
        self.head_names = [f"model.{n}" for n in head_names]

    @property
    def channels_last(self) -> bool:
        return True

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """{pixel_values [B, 3, S, S]} -> float32 [B, D]."""
        x = batch["pixel_values"]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float()


def map_by_position(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Rename ``state`` onto ``model``'s keys by position, checking every shape.

    Keys of ``state`` with no counterpart at the end (a classifier head) are dropped.
    """
    target = model.state_dict()
    values = list(state.values())
    if len(values) < len(target):
        raise RecxError(f"{source}: {len(values)} tensors, the model needs {len(target)}")
    out = {}
    for (key, want), (src_key, have) in zip(target.items(), zip(state.keys(), values)):
        if tuple(want.shape) != tuple(have.shape):
            raise RecxError(f"{source}: tensor {src_key} has shape {tuple(have.shape)}, model's {key} needs {tuple(want.shape)}")
        out[key] = have
    return out


def load_efficientnet_lite0(name: str, weights: Path, source: str | None = None) -> CNNEncoder:
    """timm ``tf_efficientnet_lite0`` (1280-d, global average pool) with weights mapped by position."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(map_by_position(model, state, str(weights)))
    return CNNEncoder(
        model,
        model.num_features,
        name=name,
        source=source or str(weights),
        weight_files=[weights],
        transform=ImageTransform(224, 256, IMAGENET_MEAN, IMAGENET_STD, "bicubic"),
        block_names=[f"blocks.{i}" for i in range(len(model.blocks))],
        head_names=["conv_head", "bn2"],
    )


TORCHVISION_ARCHS = {
    # name: (builder, feature dim, blocks)
    "resnet18": ("resnet18", 512, ["layer1", "layer2", "layer3", "layer4"]),
    "resnet34": ("resnet34", 512, ["layer1", "layer2", "layer3", "layer4"]),
    "resnet50": ("resnet50", 2048, ["layer1", "layer2", "layer3", "layer4"]),
    "mobilenet_v2": ("mobilenet_v2", 1280, [f"features.{i}" for i in range(19)]),
}


def build_torchvision(arch: str, state: dict[str, torch.Tensor] | None = None, **kwargs: Any) -> nn.Module:
    """A torchvision classifier with its last linear layer replaced by Identity ([B, D] features)."""
    import torchvision

    model = getattr(torchvision.models, TORCHVISION_ARCHS[arch][0])(weights=None, **kwargs)
    if state is not None:
        model.load_state_dict(state)
    if hasattr(model, "fc"):
        model.fc = nn.Identity()
    else:
        model.classifier = nn.Identity()
    return model


def load_torchvision(name: str, arch: str, weights: Path, source: str | None = None, **builder_kwargs: Any) -> CNNEncoder:
    """A torchvision CNN with ImageNet weights from a local ``.pth`` (resize 256, crop 224, bilinear).

    ``builder_kwargs`` go to the torchvision builder (e.g. ``width_mult`` for small test models).
    """
    state = torch.load(weights, map_location="cpu", weights_only=True)
    _, dim, blocks = TORCHVISION_ARCHS[arch]
    model = build_torchvision(arch, state, **builder_kwargs)
    return CNNEncoder(
        model,
        dim,
        name=name,
        source=source or str(weights),
        weight_files=[weights],
        transform=ImageTransform(224, 256, IMAGENET_MEAN, IMAGENET_STD, "bilinear"),
        block_names=blocks,
    )


def processor_transform(folder: Path) -> ImageTransform:
    """An ImageTransform matching a Hugging Face ``preprocessor_config.json`` (size, crop, mean, std)."""
    import json

    cfg_path = folder / "preprocessor_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}

    def _side(v: Any, default: int) -> int:
        if isinstance(v, dict):
            return int(v.get("shortest_edge") or v.get("height") or default)
        return int(v or default)

    mean = tuple(cfg.get("image_mean", IMAGENET_MEAN))
    std = tuple(cfg.get("image_std", IMAGENET_STD))
    interp = "bicubic" if cfg.get("resample", 3) == 3 else "bilinear"
    if cfg.get("do_center_crop"):
        size = _side(cfg.get("crop_size"), 224)
        return ImageTransform(size, _side(cfg.get("size"), 256), mean, std, interp)
    return ImageTransform(_side(cfg.get("size"), 224), None, mean, std, interp)


class HFVisionEncoder(ImageEncoder):
    """A transformers vision backbone (Swin, ViT-MAE with mask_ratio 0, ViT): pooled last hidden states.

    Pooling: ``avg`` uses the model's own pooler (Swin: layernorm + average over patches),
    ``cls`` the first token, ``mean`` the average over all tokens.
    """

    def __init__(self, model: nn.Module, *, name: str, source: str, weight_files: Sequence[Path], pooling: str, transform: ImageTransform):
        super().__init__(name, source, weight_files, pooling, transform)
        self.model = model.eval()
        cfg = model.config
        self.dim = int(getattr(model, "num_features", None) or cfg.hidden_size)
        self.is_mae = cfg.model_type == "vit_mae"
        if self.is_mae:
            cfg.mask_ratio = 0.0
        names = [n for n, m in model.named_modules() if isinstance(m, nn.ModuleList)]
        if cfg.model_type == "swin":
            # Swin's blocks live in stages: encoder.layers.{s}.blocks.{b}
            self._block_names = [
                f"model.encoder.layers.{s}.blocks.{b}"
                for s, stage in enumerate(model.encoder.layers)
                for b in range(len(stage.blocks))
            ]
        else:
            layer_list = next((n for n in names if len(model.get_submodule(n)) == cfg.num_hidden_layers), "")
            self._block_names = [f"model.{layer_list}.{i}" for i in range(cfg.num_hidden_layers)] if layer_list else []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """{pixel_values [B, 3, S, S]} -> float32 [B, D]."""
        x = batch["pixel_values"]
        kwargs: dict[str, Any] = {}
        if self.is_mae:
            # identity "shuffle": with mask_ratio 0 every patch is kept in its own position
            n = (self.model.config.image_size // self.model.config.patch_size) ** 2
            kwargs["noise"] = torch.arange(n, dtype=torch.float32, device=x.device).expand(x.shape[0], n)
        out = self.model(pixel_values=x, **kwargs)
        hidden = out.last_hidden_state
        if self.pooling == "avg" and getattr(out, "pooler_output", None) is not None:
            return out.pooler_output.flatten(1).float()
        if self.pooling == "cls":
            return hidden[:, 0].float()
        return masked_mean(hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device))


def load_hf_vision(name: str, folder: Path, source: str, pooling: str | None = None) -> HFVisionEncoder:
    from transformers import AutoConfig, AutoModel

    from recx.featurize.weights import quiet_transformers, weight_files

    config = AutoConfig.from_pretrained(str(folder))
    if config.model_type == "vit_mae":
        config.mask_ratio = 0.0
    with quiet_transformers():
        model = AutoModel.from_pretrained(str(folder), config=config)
    default_pooling = "avg" if config.model_type == "swin" else "cls"
    return HFVisionEncoder(
        model,
        name=name,
        source=source,
        weight_files=weight_files(folder),
        pooling=pooling or default_pooling,
        transform=processor_transform(folder),
    )
