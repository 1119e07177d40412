"""The `recx pretrain` checkpoint directory and the checks `recx train --init` makes against it.

    CKPT/config.json    backbone (name as given, canonical name, architecture signature),
                        tokenizer hash, packing settings, domains with fingerprints, options
    CKPT/model.pt       the shared weights (backbone, item positions, image projection, MLM head)
    CKPT/state.pt       optimizer, scheduler, RNG and data-order state, epoch (exact resume)
    CKPT/metrics.jsonl  one JSON line per epoch
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from recx.errors import RecxError
from recx.artifacts import read_json_config
from recx.trainer.checkpoint import load_matching_weights
from recx.trainer.config import DEFAULT_LM

CONFIG = "config.json"
WEIGHTS = "model.pt"
STATE = "state.pt"
# metrics.jsonl: one line per epoch, as a run folder has it (recx.trainer.checkpoint.METRICS)


class CheckpointMismatchError(RecxError):
    """A pretrained checkpoint does not fit the backbone or tokenizer it is used with."""


def canonical_lm(name: str) -> str:
    from recx.trainer.reolm.backbone import _MINILM_NAMES

    return DEFAULT_LM if name in _MINILM_NAMES else name


def backbone_signature(backbone: nn.Module) -> dict[str, Any]:
    """What must match for weights to carry over: architecture type and shapes."""
    c = backbone.config
    return {k: getattr(c, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")}


def read_config(ckpt: str | Path) -> dict[str, Any]:
    return read_json_config(Path(ckpt) / CONFIG, RecxError, f"{ckpt}: not a recx pretrain checkpoint (no {CONFIG})")


def check_compatible(ckpt: str | Path, lm: str, signature: dict[str, Any], tok_hash: str) -> dict[str, Any]:
    """The checkpoint's config; raises CheckpointMismatchError naming the file and the mismatch."""
    saved = read_config(ckpt)
    where = Path(ckpt) / CONFIG
    if canonical_lm(saved.get("backbone", {}).get("name", "")) != canonical_lm(lm):
        raise CheckpointMismatchError(f"{where}: pretrained backbone {saved.get('backbone', {}).get('name')!r}, but --lm is {lm!r}")
    have = saved.get("backbone", {}).get("signature", {})
    diff = [f"{k} {have.get(k)!r} vs {v!r}" for k, v in signature.items() if have.get(k) != v]
    if diff:
        raise CheckpointMismatchError(f"{where}: backbone architecture differs from {lm!r}: " + ", ".join(diff))
    if saved.get("tokenizer_hash") != tok_hash:
        raise CheckpointMismatchError(
            f"{where}: tokenizer hash {str(saved.get('tokenizer_hash'))[:12]} differs from {lm!r}'s tokenizer ({tok_hash[:12]})"
        )
    return saved


def load_shared_weights(model: nn.Module, ckpt: str | Path) -> list[str]:
    """Copy the checkpoint's weights into ``model`` where name and shape match (the backbone must
    match whole), the attribute types by attribute name; returns the names left at their fresh
    values (e.g. an image projection of another store dimension)."""
    path = Path(ckpt) / WEIGHTS
    if not path.is_file():
        raise RecxError(f"{ckpt}: no {WEIGHTS} (pretraining has not finished an epoch)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    missing_backbone = [k for k in own if k.startswith("backbone.") and k not in state]
    if missing_backbone:
        raise CheckpointMismatchError(f"{path}: no weights for {missing_backbone[0]} (and {len(missing_backbone) - 1} more)")
    names = read_config(ckpt).get("packing", {}).get("attribute_names")
    if names is None:  # written before the names were: its rows may mean other attributes than the model's
        state.pop("attribute_type.weight", None)
    return load_matching_weights(model, model.adapt_state(state, attribute_names=names))[1]
