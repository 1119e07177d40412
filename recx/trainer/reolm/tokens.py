"""Item text -> token ids, once per (dataset catalog, tokenizer, budgets), cached on disk.

Two ways to read an item (``--item-text``):

- ``attributes`` (ROMA / Recformer): every attribute the importer kept (title, category,
  brand, ...) as ``key: value``, each value cut to its own budget (``--attr-tokens``), every
  token tagged with its attribute (type 1 for the first attribute, 2 for the next, ...), so a
  long title can no longer crowd out the category and the brand.  A dataset with one text
  field reads that text as its one attribute (no key).
- ``text`` (recx before December 2026): the key-value join ``k: v; k2: v2`` (or the imported
  text) cut to ``--item-tokens`` as a whole, no attribute types.

The cache file ``<dataset>/reolm-tokens/<tokenizer hash[:16]>-<budgets>.npz`` holds the
concatenated ids (and types) of every item (no special tokens) with offsets, and the catalog
fingerprint and tokenizer hash it was made from; a file whose fingerprints differ is rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError

CACHE_DIR = "reolm-tokens"
ITEM_TEXTS = ("attributes", "text")
MAX_ATTRIBUTES = 16  # rows of the model's attribute-type embedding (type 0: special tokens)


class NoItemTextError(RecxError):
    """A dataset has no item text for a language model to read."""


@dataclass
class ItemTokens:
    """Token ids of every item: item i's ids are ``ids[offsets[i]:offsets[i+1]]`` (item 0 empty).

    ids int32 [total], offsets int64 [N+2]; ``budget`` is the per-item truncation (0: none);
    types int8 [total] the attribute of each token (1 = the first attribute; None: one text,
    no types); ``attributes`` their names.
    """

    ids: np.ndarray
    offsets: np.ndarray
    budget: int
    catalog_fingerprint: str = ""
    tokenizer_hash: str = ""
    types: np.ndarray | None = None
    attributes: tuple[str, ...] = ()

    @property
    def num_items(self) -> int:
        return len(self.offsets) - 2

    def of(self, item: int) -> np.ndarray:
        return self.ids[self.offsets[item] : self.offsets[item + 1]]

    def types_of(self, item: int) -> np.ndarray:
        """[n] attribute type of each of the item's tokens (zeros without types)."""
        if self.types is None:
            return np.zeros(self.offsets[item + 1] - self.offsets[item], dtype=np.int64)
        return self.types[self.offsets[item] : self.offsets[item + 1]].astype(np.int64)

    def lengths(self) -> np.ndarray:
        """[N+1] tokens per item."""
        return np.diff(self.offsets)

    @staticmethod
    def concat(parts: Sequence["ItemTokens"]) -> "ItemTokens":
        """One catalog of several (item 0 of each part but the first dropped; indices shift by
        the item counts before it).  Types are renumbered over the union of attribute names, so
        "title" is one type in every part."""
        ids = np.concatenate([p.ids for p in parts])
        offsets, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            offsets.append(p.offsets[2:] + base)
            base += int(p.offsets[-1])
        types, names = None, ()
        if all(p.types is not None for p in parts):
            names = tuple(dict.fromkeys(a for p in parts for a in p.attributes))
            remapped = []
            for p in parts:
                lookup = np.array([0] + [names.index(a) + 1 for a in p.attributes], dtype=np.int8)
                remapped.append(lookup[p.types])
            types = np.concatenate(remapped)
        return ItemTokens(ids, np.concatenate([np.zeros(1, np.int64), *offsets]), parts[0].budget, types=types, attributes=names)


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


def item_attributes(dataset: SequenceDataset) -> list[str]:
    """The attribute names an item is read as: the importer's ``attributes`` (e.g. title,
    category, brand split from one text), else its text fields when it has several, else none."""
    text = dataset.meta.get("text") or {}
    if text.get("attributes"):
        return list(text["attributes"])
    fields = list(text.get("fields") or [])
    return fields if len(fields) > 1 else []


def tokenize_attributes(dataset: SequenceDataset, tokenizer: Any, attributes: Sequence[str], attr_budget: int,
                        budget: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int32 [total], types int8 [total], offsets int64 [N+2]) of every item read as
    ``key: value`` per attribute, each pair cut to ``attr_budget`` tokens, items to ``budget`` (0:
    no cap).  An item with none of the attributes reads its text as attribute 1, without a key;
    with no attributes at all every item does."""
    n = dataset.num_items
    keys = [tokenizer(f"{a}:", add_special_tokens=False)["input_ids"] for a in attributes]
    columns: list[list[str | None]] = [[m.get(a) or None for m in dataset.item_meta[1:]] for a in attributes]
    lone = [None if any(col[i] for col in columns) else (t or None) for i, t in enumerate(dataset.texts[1:n + 1])]
    encoded = [_encode(col, tokenizer, attr_budget) for col in columns]
    encoded_lone = _encode(lone, tokenizer, attr_budget)
    ids: list[int] = []
    types: list[int] = []
    lengths = [0]
    for i in range(n):
        item_ids: list[int] = []
        item_types: list[int] = []
        if lone[i] is not None:
            item_ids, item_types = list(encoded_lone[i]), [1] * len(encoded_lone[i])
        for a, (key, values) in enumerate(zip(keys, encoded)):
            if values[i] is not None:
                part = (key + values[i])[:attr_budget]  # ROMA: key and value share the budget
                item_ids += part
                item_types += [a + 1] * len(part)
        if budget:
            item_ids, item_types = item_ids[:budget], item_types[:budget]
        ids += item_ids
        types += item_types
        lengths.append(len(item_ids))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.asarray(ids, dtype=np.int32), np.asarray(types, dtype=np.int8), offsets


def _encode(texts: Sequence[str | None], tokenizer: Any, budget: int, batch: int = 1024) -> list[list[int] | None]:
    """Token ids of each text cut to ``budget`` (None stays None)."""
    out: list[list[int] | None] = [None] * len(texts)
    present = [i for i, t in enumerate(texts) if t]
    for s in range(0, len(present), batch):
        idx = present[s : s + batch]
        enc = tokenizer([str(texts[i]) for i in idx], add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        for i, e in zip(idx, enc):
            out[i] = list(e[:budget])
    return out


def tokenize_items(texts: Sequence[str | None], tokenizer: Any, budget: int, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(ids int32 [total], offsets int64 [N+2]) of texts[1:], each cut to ``budget`` tokens."""
    encoded = _encode(list(texts[1:]), tokenizer, budget, batch)
    lengths = [0] + [len(e or ()) for e in encoded]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.asarray([t for e in encoded for t in (e or ())], dtype=np.int32)
    return ids, offsets


def item_tokens(dataset: SequenceDataset, tokenizer: Any, tok_hash: str, budget: int, cache: bool = True, *,
                mode: str = "text", attr_budget: int = 32) -> ItemTokens:
    """Cached token ids of ``dataset``'s items read as ``mode`` (ITEM_TEXTS); raises
    NoItemTextError when no item has text.  ``budget``: tokens per item (0: no cap; ``text``
    mode needs one); ``attr_budget``: tokens per attribute value (``attributes`` mode)."""
    if mode not in ITEM_TEXTS:
        raise ValueError(f"item text mode {mode!r}: expected one of {', '.join(ITEM_TEXTS)}")
    texts = item_texts(dataset)
    if not any(texts[1:]):
        raise NoItemTextError(f"{dataset.path / 'items.jsonl'}: no item has text; Reo-LM reads item text (import the dataset with its text file)")
    attributes = item_attributes(dataset) if mode == "attributes" else []
    name = f"{tok_hash[:16]}-{budget}" if mode == "text" else f"{tok_hash[:16]}-attr{attr_budget}-{budget}-" + _attributes_digest(dataset, attributes)
    path = Path(dataset.path) / CACHE_DIR / f"{name}.npz"
    fp = dataset.catalog_fingerprint
    names = (tuple(attributes) or ("text",)) if mode == "attributes" else ()  # a lone text is attribute 1
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                if str(z["catalog_fingerprint"]) == fp and str(z["tokenizer_hash"]) == tok_hash:
                    types = z["types"] if "types" in z.files else None
                    return ItemTokens(z["ids"], z["offsets"], budget, fp, tok_hash, types, names)
        except (OSError, KeyError, ValueError):
            pass  # damaged cache: rebuilt below
    if mode == "text":
        ids, offsets = tokenize_items(texts, tokenizer, budget)
        out = ItemTokens(ids, offsets, budget, fp, tok_hash)
    else:
        ids, types, offsets = tokenize_attributes(dataset, tokenizer, attributes, attr_budget, budget)
        out = ItemTokens(ids, offsets, budget, fp, tok_hash, types, names)
    if cache:
        _save(path, out)
    return out


def _attributes_digest(dataset: SequenceDataset, names: Sequence[str]) -> str:
    """sha256[:12] over the attribute names and every item's values: the catalog fingerprint
    covers texts, not the attributes an importer split them into."""
    h = hashlib.sha256("\0".join(names).encode())
    for meta in dataset.item_meta[1:]:
        h.update("\1".join(str(meta.get(a) or "") for a in names).encode("utf-8", "replace"))
    return h.hexdigest()[:12]


def _save(path: Path, tokens: ItemTokens) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    except OSError:
        return  # a read-only dataset dir: tokenize again next time
    os.close(fd)
    try:
        extra = {} if tokens.types is None else {"types": tokens.types}
        np.savez(tmp, ids=tokens.ids, offsets=tokens.offsets, catalog_fingerprint=tokens.catalog_fingerprint,
                 tokenizer_hash=tokens.tokenizer_hash, **extra)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
