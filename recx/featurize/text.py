"""Hugging Face text encoders (BERT, RoBERTa, MiniLM, OPT ...) with mean or CLS pooling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from recx.featurize.base import Encoder, masked_mean
from recx.featurize.weights import quiet_transformers, weight_files

# Item texts are short (title, brand, category): on Amazon-Scientific the MiniLM tokenizer gives
# a median of 46 tokens and 64 covers 92% of items whole, while attention cost grows with the
# square of the padded length.  Longer descriptions can ask for more with --max-tokens.
DEFAULT_MAX_LENGTH = 64
POOLINGS = ("mean", "cls")


def find_blocks(model: nn.Module, num_layers: int, prefix: str = "") -> list[str]:
    """Qualified names of the transformer blocks: the ModuleList of length ``num_layers``."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers and num_layers > 0:
            return [f"{prefix}{name}.{i}" for i in range(num_layers)]
    return []


def sentence_transformers_config(folder: Path) -> dict[str, Any]:
    """What a sentence-transformers folder says about pooling and normalisation ({} if not one)."""
    out: dict[str, Any] = {}
    modules = folder / "modules.json"
    if not modules.is_file():
        return out
    entries = json.loads(modules.read_text(encoding="utf-8"))
    out["normalize"] = any(str(e.get("type", "")).endswith("Normalize") for e in entries)
    for e in entries:
        if str(e.get("type", "")).endswith("Pooling"):
            cfg_path = folder / e.get("path", "") / "config.json"
            if cfg_path.is_file():
                cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
                if cfg.get("pooling_mode_mean_tokens"):
                    out["pooling"] = "mean"
                elif cfg.get("pooling_mode_cls_token"):
                    out["pooling"] = "cls"
    return out


class HFTextEncoder(Encoder):
    """A transformers ``AutoModel`` + tokenizer; output = pooled hidden states of ``layer``.

    ``layer`` indexes ``hidden_states`` (0 = embeddings, -1 or None = last block's output).
    """

    modality = "text"

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name: str,
        source: str,
        weight_files: Sequence[Path] = (),
        pooling: str = "mean",
        layer: int | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        normalize: bool = False,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"text pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        num_layers = int(getattr(model.config, "num_hidden_layers", 0))
        if layer is not None and (layer == -1 or layer == num_layers):
            layer = None
        if layer is not None and not -num_layers - 1 <= layer <= num_layers:
            raise ValueError(f"{name}: --layer {layer} out of range for {num_layers} blocks (0 = embeddings, -1 = last)")
        super().__init__(name, source, weight_files, pooling, layer)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.normalize = normalize
        self.dim = int(getattr(model.config, "word_embed_proj_dim", None) or model.config.hidden_size)
        self.num_layers = num_layers
        self._block_names = find_blocks(self.model, num_layers, prefix="model.")

    def preprocess(self, raw_items: Sequence[str]) -> dict[str, torch.Tensor]:
        """texts -> {input_ids [B, T], attention_mask [B, T]} padded to the longest text in the batch."""
        tok = self.tokenizer(
            list(raw_items), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}

    def sort_keys(self, raw_items: Sequence[str]) -> list[int]:
        ids = self.tokenizer(list(raw_items), truncation=True, max_length=self.max_length)["input_ids"]
        return [len(x) for x in ids]

    def hidden_states(self, batch: dict[str, torch.Tensor], layers: Sequence[int]) -> list[torch.Tensor]:
        """``hidden_states[l]`` for each l in ``layers`` (0 = embeddings output), each [B, T, H]."""
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        return [out.hidden_states[l] for l in layers]

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, H], mask [B, T] -> float32 [B, H], L2-normalised if the model says so."""
        if self.pooling == "mean":
            pooled = masked_mean(hidden, mask)
        else:
            pooled = hidden[:, 0].float()
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """{input_ids, attention_mask} [B, T] -> float32 [B, D]."""
        mask = batch["attention_mask"]
        if self.layer is None:
            hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        else:
            hidden = self.hidden_states(batch, [self.layer])[0]
        return self.pool(hidden, mask)

    def config_attrs(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "num_layers": self.num_layers}


def load_hf_text(
    name: str,
    folder: Path,
    source: str,
    pooling: str | None = None,
    layer: int | None = None,
    max_length: int | None = None,
    normalize: bool | None = None,
) -> HFTextEncoder:
    """Load a text encoder from a local folder (a transformers or sentence-transformers save)."""
    from transformers import AutoModel, AutoTokenizer

    st = sentence_transformers_config(folder)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModel.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return HFTextEncoder(
        model,
        tokenizer,
        name=name,
        source=source,
        weight_files=weight_files(folder),
        pooling=pooling or st.get("pooling", "mean"),
        layer=layer,
        max_length=max_length or DEFAULT_MAX_LENGTH,
        normalize=st.get("normalize", False) if normalize is None else normalize,
    )
