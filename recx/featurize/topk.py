"""Trunk caching for partial tuning: store the hidden states entering the top K blocks once, then
train only those K blocks (plus the final norm and pooling) on the cached states.

Supported: BERT-style text encoders (BERT, RoBERTa, MiniLM), OPT, ViT / ViT-MAE, Swin when
the K blocks lie inside the last stage (earlier stages change resolution between blocks), and the
CNNs of the registry (EfficientNet-Lite0, MobileNetV2, ResNet: a block is a stage), whose feature
map [B, C, H, W] entering block ``L - K`` is stored as H*W tokens of C channels.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recx.errors import RecxError
from recx.featurize.base import Encoder, encode_batch, masked_mean


class TopKUnsupportedError(RecxError):
    """The encoder (or this K) cannot be split into a cached trunk and top blocks."""


def _family(encoder: Encoder) -> str:
    from recx.featurize.image import CNNEncoder, HFVisionEncoder
    from recx.featurize.text import HFTextEncoder

    if isinstance(encoder, CNNEncoder):
        return "cnn"
    if isinstance(encoder, HFTextEncoder):
        return "opt" if encoder.model.config.model_type == "opt" else "bert"
    if isinstance(encoder, HFVisionEncoder):
        return "swin" if encoder.model.config.model_type == "swin" else "vit"
    raise TopKUnsupportedError(f"{encoder.name}: --cache-top-k supports Hugging Face text, ViT/Swin and the registry's CNN encoders, "
                               f"not {type(encoder).__name__}")


def _check_k(encoder: Encoder, k: int) -> str:
    family = _family(encoder)
    names = encoder.block_names()
    if not 1 <= k <= len(names):
        raise TopKUnsupportedError(f"{encoder.name}: --cache-top-k {k} must be between 1 and {len(names)} (its blocks)")
    if getattr(encoder, "layer", None) is not None:
        raise TopKUnsupportedError(f"{encoder.name}: --cache-top-k needs the last layer's output (drop --layer)")
    if family == "swin":
        depth = len(encoder.model.encoder.layers[-1].blocks)
        if k > depth:
            raise TopKUnsupportedError(f"{encoder.name}: Swin top-k must stay inside the last stage (k <= {depth})")
    return family


class TrunkCache:
    """Runs an encoder and captures, per batch, the hidden states entering block ``L - k``."""

    def __init__(self, encoder: Encoder, k: int):
        self.family = _check_k(encoder, k)
        self.encoder = encoder
        self.k = k
        self.block_name = encoder.block_names()[len(encoder.block_names()) - k]
        cfg = getattr(encoder.model, "config", None)
        if self.family in ("bert", "opt"):
            self.hidden_shape = (encoder.max_length, int(cfg.hidden_size))
        elif self.family == "vit":
            self.hidden_shape = ((cfg.image_size // cfg.patch_size) ** 2 + 1, int(cfg.hidden_size))
        elif self.family == "cnn":
            channels, height, width = _cnn_block_input(encoder, self.block_name)
            self.hidden_shape = (height * width, channels)
        else:
            side = encoder.transform.size // cfg.patch_size // 2 ** (len(cfg.depths) - 1)
            self.hidden_shape = (side * side, int(encoder.model.num_features))

    def attrs(self) -> dict[str, Any]:
        return {"cache_top_k": self.k, "cache_block": self.block_name, "hidden_tokens": self.hidden_shape[0], "hidden_size": self.hidden_shape[1]}

    def encode(self, batch: dict[str, torch.Tensor], device: torch.device, compute_dtype: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One batch -> (embeddings float32 [B, D], (hidden float16 [B, t, H], mask bool [B, t]))."""
        captured: list[torch.Tensor] = []

        def grab(module, args, kwargs):
            x = (args[0] if args else kwargs["hidden_states"]).detach().float().cpu()
            captured.append(feature_map_to_tokens(x) if self.family == "cnn" else x)

        handle = self.encoder.get_submodule(self.block_name).register_forward_pre_hook(grab, with_kwargs=True)
        try:
            emb = encode_batch(self.encoder, batch, device, compute_dtype)
        finally:
            handle.remove()
        hidden = captured[0]
        if "attention_mask" in batch:
            mask = batch["attention_mask"].bool().cpu()
        else:
            mask = torch.ones(hidden.shape[:2], dtype=torch.bool)
        return emb, (hidden.numpy().astype(np.float16), mask.numpy())


def feature_map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C] (row-major positions)."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_feature_map(x: torch.Tensor) -> torch.Tensor:
    """[B, H*W, C] of a square map -> [B, C, H, W], a view: contiguous tokens already are the
    channels_last layout of the map, so the training step copies nothing here."""
    b, t, c = x.shape
    side = int(round(t**0.5))
    if side * side != t:
        raise ValueError(f"{t} cached positions are not a square feature map")
    return x.reshape(b, side, side, c).permute(0, 3, 1, 2)


def _cnn_block_input(encoder: Encoder, block_name: str) -> tuple[int, int, int]:
    """(C, H, W) of what enters ``block_name`` for one image of the encoder's input size."""
    shapes: list[torch.Size] = []
    handle = encoder.get_submodule(block_name).register_forward_pre_hook(lambda m, args: shapes.append(args[0].shape[1:]))
    param = next(encoder.parameters())
    side = encoder.transform.size
    try:
        with torch.inference_mode():
            encoder.model(torch.zeros(1, 3, side, side, device=param.device, dtype=param.dtype))
    finally:
        handle.remove()
    c, h, w = shapes[0]
    return int(c), int(h), int(w)


class TopBlocks(nn.Module):
    """The top K blocks of a pretrained encoder, with its final norm and pooling.

    ``forward(hidden [B, T, H], mask [B, T]) -> [B, D]`` equals the full encoder's output when
    ``hidden`` is what entered block ``L - K`` (as cached by ``recx featurize --cache-top-k K``).
    """

    def __init__(self, encoder: Encoder, k: int):
        super().__init__()
        self.family = _check_k(encoder, k)
        self.k = k
        self.block_names = encoder.block_names()[-k:]
        self.blocks = nn.ModuleList([copy.deepcopy(b) for b in encoder.blocks()[-k:]])
        self.pooling = encoder.pooling
        self.normalize = bool(encoder.normalize)
        self.dim = encoder.dim
        model = encoder.model
        self.final: nn.Module = nn.Identity()
        if self.family == "opt":
            dec = model.decoder
            layers = [m for m in (dec.final_layer_norm, dec.project_out) if m is not None]
            self.final = copy.deepcopy(nn.Sequential(*layers)) if layers else nn.Identity()
        elif self.family in ("vit", "swin"):
            self.final = copy.deepcopy(model.layernorm)
        elif self.family == "cnn":
            self.final = copy.deepcopy(nn.Sequential(*[encoder.get_submodule(n) for n in encoder.head_names]))
        # ViT's own pooler (dense + tanh on the first token) is what "avg" pooling returns for it
        pooler = getattr(model, "pooler", None)
        self.pooler = copy.deepcopy(pooler) if self.family == "vit" and self.pooling == "avg" and pooler is not None else None

    def train(self, mode: bool = True) -> "TopBlocks":
        super().train(mode)
        if self.family == "cnn":
            # a step's distinct items are a small, skewed batch: their statistics would replace the
            # ImageNet ones the cached trunk states were normalised with; the affine weights still train
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    @classmethod
    def from_encoder(cls, encoder: Encoder, k: int) -> "TopBlocks":
        return cls(encoder, k).eval()

    @classmethod
    def from_store(cls, store: Any, model_path: str | os.PathLike | None = None) -> "TopBlocks":
        """Rebuild the top blocks a store cached states for, with the same pretrained weights.

        ``store``: an EmbeddingStore or a path.  ``model_path``: local weights when the store's
        source is not available here.  Refuses weights whose hash differs from the store's.
        """
        from recx.featurize.registry import REGISTRY, load_encoder
        from recx.featurize.store import StoreMismatchError, open_store

        if not hasattr(store, "attrs"):
            store = open_store(store)
        attrs = store.attrs
        k = int(attrs.get("cache_top_k", 0))
        if k <= 0:
            raise StoreMismatchError(f"{store.path}: no cached hidden states (featurize with --cache-top-k K)")
        name, source = str(attrs["encoder"]), str(attrs["source"])
        kwargs = dict(pooling=attrs.get("pooling"), max_length=attrs.get("max_length"))
        # a hub source is pinned to the commit the store was made with
        if name in REGISTRY:
            local = model_path or (source if Path(source).exists() else None)
            hub = local is None and ":" not in REGISTRY[name].source
            encoder = load_encoder(name, model_path=local, revision=(attrs.get("revision") or None) if hub else None, **kwargs)
        else:
            hub = model_path is None and not Path(source).exists()
            encoder = load_encoder(str(model_path or source), revision=(attrs.get("revision") or None) if hub else None, **kwargs)
        if attrs.get("weight_hash") and encoder.store_attrs()["weight_hash"] != attrs["weight_hash"]:
            raise StoreMismatchError(f"{store.path}: the weights found for {name} differ from the ones the store was made with (weight hash)")
        return cls.from_encoder(encoder, k)

    def _attention_mask(self, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Additive mask: [B, 1, 1, T] (bidirectional) or [B, 1, T, T] (causal OPT)."""
        neg = torch.finfo(dtype).min
        keep = mask[:, None, None, :].bool()
        if self.family == "opt":
            t = mask.shape[1]
            causal = torch.ones(t, t, dtype=torch.bool, device=mask.device).tril()
            keep = keep & causal[None, None]
        return torch.zeros(keep.shape, dtype=dtype, device=mask.device).masked_fill(~keep, neg)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, H] (what entered the top K blocks), mask [B, T] -> [B, D]."""
        x = hidden
        if self.family in ("bert", "opt"):
            attn = self._attention_mask(mask, x.dtype)
            for block in self.blocks:
                x = block(x, attention_mask=attn)
                x = x[0] if isinstance(x, tuple) else x
        elif self.family == "vit":
            for block in self.blocks:
                x = block(x)
                x = x[0] if isinstance(x, tuple) else x
        elif self.family == "cnn":
            x = tokens_to_feature_map(x)
            for block in self.blocks:
                x = block(x)
        else:
            side = int(round(x.shape[1] ** 0.5))
            for block in self.blocks:
                x = block(x, (side, side))
                x = x[0] if isinstance(x, tuple) else x
        x = self.final(x)
        if self.pooler is not None:
            out = self.pooler(x).flatten(1).float()
        elif self.family == "swin":
            out = x.mean(1).float()
        elif self.family == "cnn":
            out = x.float().mean((2, 3))
        elif self.pooling == "cls":
            out = x[:, 0].float()
        else:
            out = masked_mean(x, mask)
        if self.normalize:
            out = nn.functional.normalize(out, dim=-1)
        return out
