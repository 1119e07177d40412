"""Amazon-2018 "inter.json" layout of generative-recommendation work (LC-Rec, MQL4GRec, forks).

Files, for a dataset prefix ``X`` in one folder::

    X.inter.json     {"<user index>": [item index, ...], ...}   each user's items in time order
    X.item2id        original item id (ASIN) -> 0-based index, two columns, tab or space
    X.user2id        original user id (reviewer id) -> 0-based index, the same
    X.item.json      optional: {"<item index>": {"title", "brand", "categories", "description", ...}}
    X.train.inter    optional, RecBole/UniSRec style, tab separated with a header:
    X.valid.inter        user_id:token  item_id_list:token_seq  item_id:token
    X.test.inter         (a history of space-separated item indices, then the next item)

Some forks name the maps ``X.item2index`` / ``X.user2index``; both are accepted.  Image
features and any other files beside these are ignored (listed in dataset.json).

The split is leave-one-out over each sequence (valid target ``seq[-2]``, test ``seq[-1]``).
When the three split files are present they define it: every row must be reproduced exactly
(histories cut to the longest history the files hold, 50 in LC-Rec), and a row that
disagrees with ``X.inter.json`` is a fault naming the file, line and user.  Without
``X.inter.json`` the sequences are rebuilt from the split files alone.  recx item index =
map index + 1; users with fewer than 3 items are dropped and counted.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recx.data.dataset import MIN_SEQUENCE_LENGTH, Item, SequenceDataset
from recx.data.importers.pipeline import Ledger, check_ledger, finish, refuse_existing
from recx.data.importers.reading import ImportFault, fault, require_file
from recx.data.importers.text import TextSpec, as_list_text, as_text, parse_fields
from recx.data.importers.unisrec import Row, read_index, read_inter, rebuild

TEXT_FIELDS = ("title", "brand", "categories", "description")
SPLITS = ("train", "valid", "test")
MAP_SUFFIXES = {"item": ("item2id", "item2index"), "user": ("user2id", "user2index")}
MAX_LISTED = 50  # names listed in messages and in dataset.json before "... and N more"


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED]) or "nothing"
    return shown + (f" ... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _entries(src: Path) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in src.iterdir())


def find_prefix(src: Path) -> str:
    """The ``X`` of the single ``X.inter.json`` or ``X.train.inter`` in the folder ``src``."""
    found = sorted({p.name[: -len(s)] for s in (".inter.json", ".train.inter") for p in src.glob("*" + s)})
    if not found:
        raise ImportFault(
            f"{src}: no *.inter.json or *.train.inter file (expected the Amazon-2018 layout X.inter.json, "
            f"X.item2id, X.user2id, ...); found: {_listing(_entries(src))}"
        )
    if len(found) > 1:
        raise ImportFault(f"{src}: several datasets ({', '.join(found)}); pass --name to pick one")
    return found[0]


@dataclass
class Layout:
    """The files of one dataset prefix; optional ones are None when absent."""

    folder: Path
    prefix: str
    item_map: Path
    user_map: Path
    inter: Path | None
    splits: dict[str, Path] | None
    items: Path | None

    def read(self) -> list[Path]:
        return [p for p in (self.item_map, self.user_map, self.inter, *(self.splits or {}).values(), self.items) if p]


def _missing(folder: Path, prefix: str, name: str, expected: str) -> ImportFault:
    found = _entries(folder)
    mine = [n for n in found if n.startswith(prefix + ".")] or found
    return ImportFault(f"{folder / name}: not found (expected {expected}); found: {_listing(mine)}")


def locate(folder: Path, prefix: str) -> Layout:
    """The files to read for ``prefix``; a missing required one is a fault listing what exists."""
    base = folder / prefix
    splits = {s: Path(f"{base}.{s}.inter") for s in SPLITS}
    present = [s for s, p in splits.items() if p.is_file()]
    if present and len(present) < len(SPLITS):
        absent = next(s for s in SPLITS if s not in present)
        have = ", ".join(splits[s].name for s in present)
        raise _missing(folder, prefix, splits[absent].name, f"all three split files, as {have} exist")
    inter = Path(f"{base}.inter.json")
    if not inter.is_file() and not present:
        raise _missing(folder, prefix, inter.name, f"{prefix}.inter.json, or {prefix}.train.inter, .valid.inter and .test.inter")
    maps = {}
    for kind, (name, alias) in MAP_SUFFIXES.items():
        hit = next((p for p in (Path(f"{base}.{name}"), Path(f"{base}.{alias}")) if p.is_file()), None)
        if hit is None:
            raise _missing(folder, prefix, f"{prefix}.{name}", f"{prefix}.{name} or {prefix}.{alias}")
        maps[kind] = hit
    meta = Path(f"{base}.item.json")
    return Layout(
        folder, prefix, maps["item"], maps["user"],
        inter=inter if inter.is_file() else None,
        splits=splits if present else None,
        items=meta if meta.is_file() else None,
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = next((k for k, c in Counter(keys).items() if c > 1), None)
    if dup is not None:
        raise ValueError(f"key {dup!r} given twice")
    return dict(pairs)


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The top-level JSON object of ``path``; malformed JSON is a fault naming the line."""
    raw = require_file(path, what).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise fault(path, line, f"not valid utf-8 (byte {raw[e.start:e.start + 1]!r})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise fault(path, e.lineno, f"malformed JSON ({e.msg}, column {e.colno})") from None
    except ValueError as e:  # a duplicate key
        raise fault(path, None, f"malformed JSON object: {e}") from None
    if not isinstance(obj, dict):
        raise fault(path, None, f"expected a JSON object keyed by index, got a {type(obj).__name__}")
    return obj


def _key_index(path: Path, key: str, n: int, map_name: str, what: str) -> int:
    try:
        idx = int(key)
    except ValueError:
        raise fault(path, None, f"key {key!r} is not a {what} index") from None
    if not 0 <= idx < n:
        raise fault(path, None, f"{what} index {idx} not in {map_name} (0..{n - 1})")
    return idx


def read_sequences(layout: Layout, n_users: int, n_items: int) -> dict[int, list[int]]:
    """User index -> 0-based item indices, from ``X.inter.json``, in user index order."""
    path = layout.inter
    assert path is not None
    seqs: dict[int, list[int]] = {}
    for key, items in read_json_object(path, "interaction file").items():
        user = _key_index(path, key, n_users, layout.user_map.name, "user")
        if not isinstance(items, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            raise fault(path, None, f"user {key}: expected a list of item indices")
        bad = next((x for x in items if not 0 <= x < n_items), None)
        if bad is not None:
            raise fault(path, None, f"user {key}: item index {bad} not in {layout.item_map.name} (0..{n_items - 1})")
        seqs[user] = items
    if not seqs:
        raise fault(path, None, "no interactions to import")
    return dict(sorted(seqs.items()))


Splits = dict[str, dict[int, list[Row]]]  # split -> user index -> rows in file order


def read_splits(splits: dict[str, Path], n_users: int, n_items: int, ledger: Ledger) -> Splits:
    parts = {}
    for split, path in splits.items():
        parts[split] = read_inter(path, n_users, n_items)
        ledger.read(path, sum(len(v) for v in parts[split].values()))
    return parts


def history_cap(parts: Splits) -> int:
    """How many items the split files keep in a history: the longest one they hold."""
    return max((len(r[1]) for rows in parts.values() for v in rows.values() for r in v), default=1)


def check_splits(parts: Splits, splits: dict[str, Path], seqs: dict[int, list[int]], cap: int, inter: Path) -> None:
    """Every split row must be a leave-one-out row of the user's ``X.inter.json`` sequence, and
    every such row must be there; the first user (by index) that differs is the fault."""
    for user in sorted({u for rows in parts.values() for u in rows} | set(seqs)):
        seq = seqs.get(user, [])
        n = len(seq)
        if n < MIN_SEQUENCE_LENGTH:
            split = next((s for s in SPLITS if user in parts[s]), None)
            if split is not None:
                why = f"has {n} items (fewer than {MIN_SEQUENCE_LENGTH}) in" if seq else "has no sequence in"
                raise fault(splits[split], parts[split][user][0][0], f"user index {user} {why} {inter.name}")
            continue
        expected = {
            "valid": Counter([(tuple(seq[: n - 2][-cap:]), seq[n - 2])]),
            "test": Counter([(tuple(seq[: n - 1][-cap:]), seq[n - 1])]),
            "train": Counter((tuple(seq[:k][-cap:]), seq[k]) for k in range(1, n - 2)),
        }
        for split in ("valid", "test", "train"):
            _check_user_rows(splits[split], split, user, parts[split].get(user, []), expected[split], inter)


def _check_user_rows(path: Path, split: str, user: int, rows: list[Row], expected: Counter, inter: Path) -> None:
    left = Counter(expected)
    for lineno, hist, target in rows:
        key = (tuple(hist), target)
        if left[key] <= 0:
            raise fault(
                path, lineno,
                f"user index {user}: row (history of {len(hist)} items, target {target}) is not a {split} row "
                f"of the user's sequence in {inter.name}",
            )
        left[key] -= 1
    missing = sum(left.values())
    if missing:
        raise fault(path, None, f"user index {user}: {missing} {split} row(s) of the user's sequence in {inter.name} are absent")


def read_item_meta(layout: Layout, n_items: int, ledger: Ledger) -> dict[int, dict[str, Any]]:
    """Item index -> metadata record, from ``X.item.json``."""
    path = layout.items
    assert path is not None
    records: dict[int, dict[str, Any]] = {}
    for key, rec in read_json_object(path, "item metadata file").items():
        idx = _key_index(path, key, n_items, layout.item_map.name, "item")
        if not isinstance(rec, dict):
            raise fault(path, None, f"item {key}: expected an object of fields, got a {type(rec).__name__}")
        if "description" in rec:  # a list of paragraphs in the raw 2018 metadata
            rec = {**rec, "description": as_list_text(rec["description"])}
        records[idx] = rec
    ledger.read(path, len(records))
    return records


def make_items(item_ids: list[str], records: dict[int, dict[str, Any]], spec: TextSpec) -> list[Item]:
    """Items in index order; every non-empty metadata field is kept as text in ``meta``."""
    items = []
    for idx, iid in enumerate(item_ids):
        rec = records.get(idx, {})
        attrs = {k: as_text(v) for k, v in rec.items()}
        items.append(Item(id=iid, text=spec.render(rec), meta={k: v for k, v in attrs.items() if v}))
    return items


def load_sequences(layout: Layout, n_users: int, n_items: int, ledger: Ledger) -> tuple[dict[int, list[int]], int | None]:
    """(user index -> kept 0-based sequence, history cap of the split files or None), with every
    interaction row counted in the ledger."""
    parts = read_splits(layout.splits, n_users, n_items, ledger) if layout.splits else None
    cap = history_cap(parts) if parts else None
    if layout.inter is None:
        assert parts is not None and layout.splits is not None and cap is not None
        users, rebuilt = rebuild(layout.folder / layout.prefix, parts["train"], parts["valid"], parts["test"], n_users, cap)
        rows = sum(len(v) for split in parts.values() for v in split.values())
        ledger.outcomes["kept"] += rows
        check_ledger(ledger, rows)
        _count_absent_users(n_users, len(users), "the split files", ledger)
        return dict(zip(users, rebuilt)), cap
    seqs = read_sequences(layout, n_users, n_items)
    rows = sum(len(s) for s in seqs.values())
    ledger.read(layout.inter, rows)
    _count_absent_users(n_users, len(seqs), layout.inter.name, ledger)
    if parts is not None and layout.splits is not None and cap is not None:
        check_splits(parts, layout.splits, seqs, cap, layout.inter)
    kept = {u: s for u, s in seqs.items() if len(s) >= MIN_SEQUENCE_LENGTH}
    ledger.outcomes["kept"] += sum(len(s) for s in kept.values())
    if len(kept) < len(seqs):
        ledger.outcomes["filtered: min sequence length"] += rows - sum(len(s) for s in kept.values())
    check_ledger(ledger, rows)
    if not kept:
        raise fault(layout.inter, None, f"no user has {MIN_SEQUENCE_LENGTH} or more items ({len(seqs)} users, all shorter)")
    return kept, cap


def import_amazon18(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    name: str | None = None,
    text_fields: str | None = None,
    text_template: str | None = None,
) -> SequenceDataset:
    """Import an Amazon-2018 ``X.inter.json`` folder (LC-Rec / MQL4GRec layout).

    Args:
        src: the folder holding ``X.inter.json``, ``X.item2id``, ``X.user2id`` and optionally
            ``X.item.json`` and ``X.train.inter`` / ``X.valid.inter`` / ``X.test.inter``.
        name: the prefix ``X`` when the folder holds several datasets.
        text_fields: ``X.item.json`` fields joined into the item text (default
            ``title,brand,categories,description``, as ``title: ...; brand: ...``).
        text_template: a format string over the text fields instead, e.g. ``{title} by {brand}``.
    """
    folder = Path(src)
    refuse_existing(out_dir, force)
    if not folder.is_dir():
        raise ImportFault(f"{folder}: not a directory")
    layout = locate(folder, name or find_prefix(folder))
    ledger = Ledger()
    item_ids, user_ids = read_index(layout.item_map), read_index(layout.user_map)
    ledger.read(layout.item_map, len(item_ids))
    ledger.read(layout.user_map, len(user_ids))
    seqs, cap = load_sequences(layout, len(user_ids), len(item_ids), ledger)

    spec = TextSpec(parse_fields(text_fields, TEXT_FIELDS), text_template, labelled=True)
    records: dict[int, dict[str, Any]] = {}
    if layout.items is not None:
        records = read_item_meta(layout, len(item_ids), ledger)
        if text_fields is not None:
            spec.check(sorted({k for r in records.values() for k in r}), str(layout.items))
    elif text_fields is not None or text_template is not None:
        raise ImportFault(f"{folder / (layout.prefix + '.item.json')}: not found, and --text-fields/--text-template need it")
    else:
        ledger.warnings[f"no {layout.prefix}.item.json: items have no text"] += 1
    items = make_items(item_ids, records, spec)
    _count_coverage(items, seqs, records, ledger)

    read = [p.name for p in layout.read()]
    meta: dict[str, Any] = {
        "name": layout.prefix,
        "source": {
            "format": "amazon18",
            "path": str(folder.resolve()),
            "prefix": layout.prefix,
            "files": read,
            "ignored": _ignored(folder, read),
            "split_source": _split_source(layout),
            "max_history": cap,
        },
        "filters": {
            "k_core": None,
            "min_sequence_length": MIN_SEQUENCE_LENGTH,
            "dedup": None,
            "max_sequence_length": None,
            "note": "sequences kept as given (filtered upstream); users with fewer than 3 items dropped",
        },
        "text": {**spec.to_dict(), "source_file": layout.items.name} if layout.items else None,
        "item_index": f"recx index = {layout.item_map.name} index + 1",
    }
    users = list(seqs)
    return finish(out_dir, items, [user_ids[u] for u in users], [np.asarray(seqs[u]) for u in users], None, meta, ledger, force=force)


def _count_absent_users(n_users: int, present: int, where: str, ledger: Ledger) -> None:
    if present < n_users:
        ledger.warnings[f"users in the user map but not in {where}"] += n_users - present


def _count_coverage(items: list[Item], seqs: dict[int, list[int]], records: dict[int, dict[str, Any]], ledger: Ledger) -> None:
    unused = len(items) - len({i for s in seqs.values() for i in s})
    if unused:
        ledger.warnings["items in the item map without interactions"] += unused
    if records:
        no_record = sum(1 for k in range(len(items)) if k not in records)
        if no_record:
            ledger.warnings["items without a metadata record"] += no_record
        no_text = sum(1 for it in items if not it.text)
        if no_text:
            ledger.warnings["items without text"] += no_text


def _split_source(layout: Layout) -> str:
    if layout.splits is None:
        assert layout.inter is not None
        return f"{layout.inter.name} (leave-one-out: valid seq[-2], test seq[-1])"
    files = ", ".join(p.name for p in layout.splits.values())
    return files + (f" (checked against {layout.inter.name})" if layout.inter else " (sequences rebuilt from them)")


def _ignored(folder: Path, read: list[str]) -> list[str]:
    rest = [n for n in _entries(folder) if n not in read]
    return rest[:MAX_LISTED] + ([f"... and {len(rest) - MAX_LISTED} more"] if len(rest) > MAX_LISTED else [])
