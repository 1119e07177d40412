"""From an interaction log to a dataset directory: compact storage of the log, the filters
(dedup, truncation, k-core, minimum length) with stable tie-breaking, the ledger that accounts
for every input row, and the final write.

Each format module only parses its files into an :class:`InteractionLog` plus a
:class:`Catalog`, then calls :func:`assemble` (or :func:`finish` for pre-split formats).
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recx.artifacts import DATASET, check_replaceable
from recx.data.dataset import MIN_SEQUENCE_LENGTH, DatasetError, Item, SequenceDataset, write_dataset
from recx.data.importers.reading import ImportFault


@dataclass
class Ledger:
    """Accounts for every input row: how many were read per file and where each went.

    ``outcomes`` maps ``"kept"``, ``"filtered: <rule>"`` or ``"skipped: <reason>"`` to row
    counts; their sum equals the interaction-file rows read.  ``warnings`` counts things that are
    normal but worth knowing (an item without text, a history pointing to unknown news).
    """

    files: dict[str, int] = field(default_factory=dict)
    outcomes: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)

    def read(self, path: Path | str, rows: int) -> None:
        self.files[str(path)] = self.files.get(str(path), 0) + rows

    def to_dict(self) -> dict[str, Any]:
        return {"files": dict(self.files), "rows": dict(self.outcomes), "warnings": dict(self.warnings)}

    def lines(self) -> list[str]:
        """Where the input rows went, one fact per line.

        Counts here are rows of the input files, never called interactions: a row of a pre-split
        file or a history line is not one interaction, and only the written dataset's own counts
        are comparable with a paper's table.
        """
        out = [f"input rows read: {n:,} from {Path(p).name}" for p, n in self.files.items()]
        if self.outcomes:
            out.append(f"input rows: {sum(self.outcomes.values()):,} ({self._by_kind()})")
        for k, v in sorted(self.outcomes.items()):
            if k != "kept":
                out.append(f"  {k}: {v:,}")
        for k, v in sorted(self.warnings.items()):
            out.append(f"warning: {k}: {v:,}")
        return out

    def _by_kind(self) -> str:
        """``kept 20, filtered 3, skipped 2`` from outcomes keyed ``kept`` / ``filtered: rule`` / ``skipped: why``."""
        kinds: Counter = Counter()
        for k, v in self.outcomes.items():
            kinds[k.split(":")[0]] += v
        order = sorted(kinds, key=lambda k: (k != "kept", k))
        return ", ".join(f"{k} {kinds[k]:,}" for k in order)


class IdMap:
    """Original string id <-> dense code (0-based, insertion order)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []

    def code(self, key: str) -> int:
        c = self.index.get(key)
        if c is None:
            c = self.index[key] = len(self.ids)
            self.ids.append(key)
        return c

    def __len__(self) -> int:
        return len(self.ids)


class InteractionLog:
    """Interactions in file order, stored compactly (three growing int64 arrays, 24 bytes a row)."""

    def __init__(self) -> None:
        self.users = IdMap()
        self.items = IdMap()
        self._u = array("q")
        self._i = array("q")
        self._t = array("q")

    def add(self, user: str, item: str, timestamp: int) -> None:
        self._u.append(self.users.code(user))
        self._i.append(self.items.code(item))
        self._t.append(timestamp)

    def __len__(self) -> int:
        return len(self._u)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user codes [M], item codes [M], timestamps [M]) int64, in file order (read-only views)."""
        return tuple(np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, np.int64) for a in (self._u, self._i, self._t))  # type: ignore[return-value]


DEDUP_MODES = ("exact", "none", "consecutive", "same-time")


@dataclass
class Filters:
    """Processing options, recorded verbatim in dataset.json."""

    k_core: int = 0  # users and items with fewer interactions are dropped, iterated to a fixed point
    min_length: int = MIN_SEQUENCE_LENGTH  # never below 3 (leave-one-out)
    # "exact" (default): drop a row repeating an earlier (user, item, timestamp) row, which would
    # put the test target in its own training history (logs without times keep every row);
    # "same-time": the same rule under its older name (H&M same-day repeats); "none": keep every
    # row; "consecutive": drop an interaction repeating the user's previous item
    dedup: str = "exact"
    max_length: int = 0  # keep each user's most recent max_length interactions (0 = all)

    def __post_init__(self) -> None:
        if self.dedup not in DEDUP_MODES:
            raise ValueError(f"dedup must be one of {', '.join(DEDUP_MODES)}; got {self.dedup!r}")
        if self.k_core < 0 or self.max_length < 0:
            raise ValueError("k_core (--k-core) and max_length (--max-len) must be >= 0")
        if self.max_length and self.max_length < MIN_SEQUENCE_LENGTH:
            raise ValueError(f"max_length (--max-len) must be 0 (keep all) or >= {MIN_SEQUENCE_LENGTH}")
        self.min_length = max(MIN_SEQUENCE_LENGTH, self.min_length)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k_core": self.k_core or None,
            "min_sequence_length": self.min_length,
            "dedup": self.dedup,
            "max_sequence_length": self.max_length or None,
            "order": "timestamp, ties broken by file order",
            "k_core_applied_after": "dedup and max-length truncation, iterated with the minimum length to a fixed point",
        }


def build_sequences(
    log: InteractionLog, filters: Filters, ledger: Ledger, timed: bool = True
) -> tuple[list[int], list[int], list[np.ndarray], list[np.ndarray]]:
    """Apply the filters and return ``(user codes, item codes, sequences, timestamps)``.

    Sequences hold 0-based positions into the returned item code list (add 1 for recx
    indices).  Users keep their first-seen order; items are ordered by their first appearance
    in the input file.  Every removed row is counted in ``ledger.outcomes`` under its rule.
    ``timed``: the log holds real timestamps (without them no two rows are exact duplicates).
    """
    u, i, t = log.arrays()
    keep = np.ones(len(u), dtype=bool)
    order = np.lexsort((np.arange(len(u)), t, u))  # by user, then time, then file order

    if filters.dedup == "consecutive":
        us, its = u[order], i[order]
        rep = np.zeros(len(order), dtype=bool)
        rep[1:] = (us[1:] == us[:-1]) & (its[1:] == its[:-1])
        keep[order[rep]] = False
        ledger.outcomes["filtered: consecutive duplicate"] += int(rep.sum())
    elif filters.dedup in ("exact", "same-time") and timed and len(u):
        _, first = np.unique(np.stack([u, t, i], axis=1), axis=0, return_index=True)
        rep = np.ones(len(u), dtype=bool)
        rep[first] = False
        keep &= ~rep
        if rep.any():
            ledger.outcomes["filtered: exact duplicate (same user, item, time)"] += int(rep.sum())

    if filters.max_length:
        o = order[keep[order]]
        us = u[o]
        # position from the end within each user's run
        ends = np.r_[np.nonzero(us[1:] != us[:-1])[0], len(us) - 1] if len(us) else np.zeros(0, np.int64)
        run_end = np.repeat(ends, np.diff(np.r_[-1, ends]))
        from_end = run_end - np.arange(len(us))
        drop = from_end >= filters.max_length
        keep[o[drop]] = False
        ledger.outcomes["filtered: max sequence length (oldest dropped)"] += int(drop.sum())

    n_users, n_items = len(log.users), len(log.items)
    min_user = max(filters.min_length, filters.k_core)
    while True:
        uc = np.bincount(u[keep], minlength=n_users)
        ic = np.bincount(i[keep], minlength=n_items)
        bad_u = keep & (uc[u] < min_user)
        bad_i = keep & (ic[i] < filters.k_core) & ~bad_u
        if not bad_u.any() and not bad_i.any():
            break
        # attribute each removal to the rule that fired first for that row
        short_u = keep & (uc[u] < filters.min_length)
        for rule, mask in (("min sequence length", short_u), ("k-core (user)", bad_u & ~short_u), ("k-core (item)", bad_i)):
            if mask.any():
                ledger.outcomes[f"filtered: {rule}"] += int(mask.sum())
        keep &= ~bad_u & ~bad_i
    ledger.outcomes["kept"] += int(keep.sum())

    o = order[keep[order]]
    us, its, ts = u[o], i[o], t[o]
    in_file = np.sort(o)
    item_codes = _first_seen(i[in_file])
    user_codes = _first_seen(u[in_file])
    pos = np.full(n_items, -1, dtype=np.int64)
    pos[item_codes] = np.arange(len(item_codes))
    bounds = np.r_[0, np.nonzero(us[1:] != us[:-1])[0] + 1, len(us)] if len(us) else np.zeros(1, np.int64)
    by_user = {int(us[a]): (a, b) for a, b in zip(bounds[:-1], bounds[1:])}
    seqs = [pos[its[by_user[c][0] : by_user[c][1]]] for c in user_codes]
    stamps = [ts[by_user[c][0] : by_user[c][1]] for c in user_codes]
    return user_codes, item_codes, seqs, stamps


def _first_seen(codes: np.ndarray) -> list[int]:
    """Distinct values of ``codes`` in order of first occurrence."""
    _, first = np.unique(codes, return_index=True)
    return [int(x) for x in codes[np.sort(first)]]


def check_ledger(ledger: Ledger, rows: int) -> None:
    """Every interaction row must be accounted for exactly once."""
    total = sum(ledger.outcomes.values())
    if total != rows:
        raise AssertionError(f"import ledger accounts for {total} rows but {rows} were read")


def finish(
    out_dir: str | os.PathLike,
    items: Sequence[Item],
    user_ids: Sequence[str],
    sequences: Sequence[np.ndarray],
    timestamps: Sequence[np.ndarray] | None,
    meta: dict[str, Any],
    ledger: Ledger,
    force: bool = False,
    image_root: str | os.PathLike | None = None,
) -> SequenceDataset:
    """Write the dataset with the ledger recorded under ``meta["import"]``.

    ``sequences`` hold 0-based item positions; they become 1-based recx indices here.
    """
    full = dict(meta)
    full["import"] = ledger.to_dict()
    return write_dataset(
        out_dir,
        items,
        user_ids,
        [np.asarray(s, dtype=np.int64) + 1 for s in sequences],
        full,
        timestamps=timestamps,
        image_root=image_root,
        force=force,
    )


def refuse_existing(out_dir: str | os.PathLike, force: bool) -> None:
    """Fail before any parsing when the output may not be written (write_dataset checks again at the end)."""
    check_replaceable(Path(out_dir).resolve(), DATASET, force, error=DatasetError)


@dataclass
class Catalog:
    """Per original item id: text, image path (relative to ``image_root``) and extra metadata."""

    text: dict[str, str] = field(default_factory=dict)
    image: dict[str, str] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    described: set[str] = field(default_factory=set)  # ids that had a metadata row


def assemble(
    out_dir: str | os.PathLike,
    log: InteractionLog,
    filters: Filters,
    ledger: Ledger,
    catalog: Catalog,
    meta: dict[str, Any],
    force: bool = False,
    image_root: str | os.PathLike | None = None,
    keep_timestamps: bool = True,
    rows_read: int | None = None,
) -> SequenceDataset:
    """Filter the log into sequences, attach the catalog, count warnings, write the dataset.

    ``rows_read`` is the number of interaction rows the importer read; the ledger must account
    for each of them (kept, filtered by a rule, or skipped for a reason).
    """
    if len(log) == 0:
        raise ImportFault(f"{meta.get('source', {}).get('path', out_dir)}: no interactions to import")
    users, item_codes, seqs, stamps = build_sequences(log, filters, ledger, timed=keep_timestamps)
    if rows_read is not None:
        check_ledger(ledger, rows_read)
    if not seqs:
        raise ImportFault(
            f"{meta.get('source', {}).get('path', out_dir)}: no user is left after filtering "
            f"({', '.join(f'{k}: {v}' for k, v in ledger.outcomes.items() if v)})"
        )
    items = []
    for c in item_codes:
        iid = log.items.ids[c]
        items.append(Item(id=iid, text=catalog.text.get(iid), image=catalog.image.get(iid), meta=catalog.meta.get(iid, {})))
    if catalog.described:
        n = sum(1 for it in items if it.id not in catalog.described)
        if n:
            ledger.warnings["items without a metadata row"] += n
        kept = {it.id for it in items}
        unused = sum(1 for iid in catalog.described if iid not in kept)
        if unused:
            ledger.warnings["metadata rows for items not in the kept interactions"] += unused
    if meta.get("text") is not None:
        n = sum(1 for it in items if not it.text)
        if n:
            ledger.warnings["items without text"] += n
    if image_root is not None:
        n = sum(1 for it in items if it.image is None)
        if n:
            ledger.warnings["items without image"] += n
    full = dict(meta)
    full["filters"] = filters.to_dict()
    return finish(
        out_dir,
        items,
        [log.users.ids[c] for c in users],
        seqs,
        stamps if keep_timestamps else None,
        full,
        ledger,
        force=force,
        image_root=image_root,
    )
