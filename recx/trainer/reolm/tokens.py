"""Item text -> token ids, once per (dataset catalog, tokenizer, budget), cached on disk.

The cache file ``<dataset>/reolm-tokens/<tokenizer hash[:16]>-<budget>.npz`` holds the
concatenated ids of every item (no special tokens) with offsets, and the catalog fingerprint
and tokenizer hash it was made from; a file whose fingerprints differ is rebuilt, never used.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError

CACHE_DIR = "reolm-tokens"


class NoItemTextError(RecxError):
    """A dataset has no item text for a language model to read."""


@dataclass
class ItemTokens:
    """Token ids of every item: item i's ids are ``ids[offsets[i]:offsets[i+1]]`` (item 0 empty).

    ids int32 [total], offsets int64 [N+2]; ``budget`` is the per-item truncation.
    """

    ids: np.ndarray
    offsets: np.ndarray
    budget: int
    catalog_fingerprint: str = ""
    tokenizer_hash: str = ""

    @property
    def num_items(self) -> int:
        return len(self.offsets) - 2

    def of(self, item: int) -> np.ndarray:
        return self.ids[self.offsets[item] : self.offsets[item + 1]]

    def lengths(self) -> np.ndarray:
        """[N+1] tokens per item."""
        return np.diff(self.offsets)

    @staticmethod
    def concat(parts: Sequence["ItemTokens"]) -> "ItemTokens":
        """One catalog of several (item 0 of each part but the first dropped; indices shift by
        the item counts before it)."""
        ids = np.concatenate([p.ids for p in parts])
        offsets, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            offsets.append(p.offsets[2:] + base)
            base += int(p.offsets[-1])
        return ItemTokens(ids, np.concatenate([np.zeros(1, np.int64), *offsets]), parts[0].budget)


def item_texts(dataset: SequenceDataset) -> list[str | None]:
    """Key-value text per item (length N+1): ``key: value`` of the importer's text fields when the
    item's meta holds them all, else the item's text as imported."""
    fields = list((dataset.meta.get("text") or {}).get("fields") or [])
    out: list[str | None] = [None]
    for text, meta in zip(dataset.texts[1:], dataset.item_meta[1:]):
        if text and fields and all(f in meta for f in fields):
            out.append("; ".join(f"{f}: {meta[f]}" for f in fields))
        else:
            out.append(text or None)
    return out


def tokenize_items(texts: Sequence[str | None], tokenizer: Any, budget: int, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(ids int32 [total], offsets int64 [N+2]) of texts[1:], each cut to ``budget`` tokens."""
    lengths = [0]
    chunks: list[np.ndarray] = []
    body = list(texts[1:])
    for s in range(0, len(body), batch):
        part = body[s : s + batch]
        enc = tokenizer([t or "" for t in part], add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        for ids in enc:
            ids = ids[:budget]
            lengths.append(len(ids))
            chunks.append(np.asarray(ids, dtype=np.int32))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    return ids, offsets


def item_tokens(dataset: SequenceDataset, tokenizer: Any, tok_hash: str, budget: int, cache: bool = True) -> ItemTokens:
    """Cached token ids of ``dataset``'s items; raises NoItemTextError when no item has text."""
    texts = item_texts(dataset)
    if not any(texts[1:]):
        raise NoItemTextError(f"{dataset.path / 'items.jsonl'}: no item has text; Reo-LM reads item text (import the dataset with its text file)")
    path = Path(dataset.path) / CACHE_DIR / f"{tok_hash[:16]}-{budget}.npz"
    fp = dataset.catalog_fingerprint
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                if str(z["catalog_fingerprint"]) == fp and str(z["tokenizer_hash"]) == tok_hash:
                    return ItemTokens(z["ids"], z["offsets"], budget, fp, tok_hash)
        except (OSError, KeyError, ValueError):
            pass  # damaged cache: rebuilt below
    ids, offsets = tokenize_items(texts, tokenizer, budget)
    out = ItemTokens(ids, offsets, budget, fp, tok_hash)
    if cache:
        _save(path, out)
    return out


def _save(path: Path, tokens: ItemTokens) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    except OSError:
        return  # a read-only dataset dir: tokenize again next time
    os.close(fd)
    try:
        np.savez(tmp, ids=tokens.ids, offsets=tokens.offsets, catalog_fingerprint=tokens.catalog_fingerprint, tokenizer_hash=tokens.tokenizer_hash)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
