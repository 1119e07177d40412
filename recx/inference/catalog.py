"""The catalog a model serves: original item ids <-> indices 1..N, display titles, fingerprint.

It comes from a dataset directory (``from_dataset``) or from an export's ``items.jsonl``
(``read``), so an export can translate ids without the dataset it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from recx.errors import RecxError

TITLE_CHARS = 80


class CatalogError(RecxError, ValueError):
    """A catalog file is malformed or does not belong to the dataset it is used with."""


def display_title(text: str | None, meta: dict[str, Any] | None = None) -> str | None:
    """An item's title for listings: its ``meta["title"]`` if any, else the start of its text."""
    title = (meta or {}).get("title")
    if not isinstance(title, str) or not title.strip():
        title = text
    if not title:
        return None
    title = " ".join(str(title).split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass
class Catalog:
    """item_ids / titles: lists of length N+1 (index 0 = padding, id "")."""

    item_ids: list[str]
    titles: list[str | None]
    catalog_fingerprint: str
    name: str = ""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.titles) != len(self.item_ids):
            raise CatalogError(f"catalog {self.name!r}: {len(self.item_ids)} ids but {len(self.titles)} titles")
        self._index = {iid: i for i, iid in enumerate(self.item_ids) if i > 0}

    @property
    def num_items(self) -> int:
        return len(self.item_ids) - 1

    @classmethod
    def from_dataset(cls, dataset: Any) -> "Catalog":
        titles = [None] + [display_title(dataset.texts[i], dataset.item_meta[i]) for i in range(1, dataset.num_items + 1)]
        return cls(list(dataset.item_ids), titles, dataset.catalog_fingerprint, dataset.name)

    def index_of(self, item_id: str) -> int | None:
        return self._index.get(str(item_id))

    def resolve(self, item_ids: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        """(indices [n] int64 of the known ids, in order; the unknown ids, in order)."""
        known, unknown = [], []
        for iid in item_ids:
            i = self._index.get(str(iid))
            (known.append(i) if i is not None else unknown.append(str(iid)))
        return np.asarray(known, dtype=np.int64), unknown

    def ids(self, indices: Sequence[int]) -> list[str]:
        return [self.item_ids[int(i)] for i in indices]

    # -- file form (an export's items.jsonl) ------------------------------------------------
    def write(self, path: Path) -> None:
        """One JSON line per item 1..N: {"index", "id", "title"}."""
        with open(path, "w", encoding="utf-8") as f:
            for i in range(1, self.num_items + 1):
                f.write(json.dumps({"index": i, "id": self.item_ids[i], "title": self.titles[i]}, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, path: Path, catalog_fingerprint: str, name: str = "") -> "Catalog":
        ids, titles = [""], [None]
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    index, iid = int(row["index"]), str(row["id"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    raise CatalogError(f"{path}:{lineno}: expected a JSON object with index, id and title") from None
                if index != lineno:
                    raise CatalogError(f"{path}:{lineno}: item index {index}, expected {lineno} (rows must be items 1..N in order)")
                ids.append(iid)
                titles.append(row.get("title"))
        return cls(ids, titles, catalog_fingerprint, name)
