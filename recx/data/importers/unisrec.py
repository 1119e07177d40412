"""UniSRec / RecBole "benchmark file" layout (pre-split leave-one-out).

Files, for a dataset prefix ``X`` (tab separated; the ``.inter`` and ``.text`` files have a
header row)::

    X.train.inter   user_id:token  item_id_list:token_seq  item_id:token   (one row per prefix)
    X.valid.inter   the same, one row per user (history seq[:-2], target seq[-2])
    X.test.inter    the same, one row per user (history seq[:-1], target seq[-1])
    X.text          item_id:token  text:token_seq   keyed by the original id (ASIN)
    X.item2index    original item id -> 0-based index (no header)
    X.user2index    original user id -> 0-based index (no header)

Histories in the files are cut to their last ``max_history`` items (50 in UniSRec), so each
user's full sequence is rebuilt from the train rows: the shortest history, then the train
targets in order, then the valid and test targets.  The rebuilt sequence must reproduce every
row (targets exactly, histories as suffixes of the right length); any disagreement is a fault
naming the file and line.  recx item index = file index + 1.

Each item keeps the text exactly as given (the catalog fingerprint covers it); when the texts are
UniSRec's "title. category. brand. " sentences, the three fields are also split out into the
item's ``meta`` (see :mod:`recx.data.importers.attributes`) and dataset.json's ``text`` lists
them under ``attributes``.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from recx.data.dataset import Item, SequenceDataset
from recx.data.importers.attributes import ATTRIBUTES, split_attributes
from recx.data.importers.pipeline import Ledger, finish, refuse_existing
from recx.data.importers.reading import ImportFault, fault, parse_int, read_lines, read_table, require_file

USER, HISTORY, TARGET = "user_id:token", "item_id_list:token_seq", "item_id:token"
TEXT_ID, TEXT = "item_id:token", "text:token_seq"


def find_prefix(src: Path) -> str:
    """The ``X`` of the single ``X.train.inter`` in ``src``."""
    if not src.is_dir():
        raise ImportFault(f"{src}: not a directory")
    found = sorted(p.name[: -len(".train.inter")] for p in src.glob("*.train.inter"))
    if not found:
        hint = _amazon18_hint(src) if any(src.glob("*.item2id")) and not any(src.glob("*.item2index")) else ""
        raise ImportFault(f"{src}: no *.train.inter file (expected the UniSRec layout X.train.inter, X.valid.inter, ...){hint}")
    if len(found) > 1:
        raise ImportFault(f"{src}: several datasets ({', '.join(found)}); pass --name to pick one")
    return found[0]


def _amazon18_hint(src: Path) -> str:
    return f": this looks like the Amazon-2018 (LC-Rec) layout; try `recx data import amazon18 {src}`"


def read_index(path: Path) -> list[str]:
    """Original ids ordered by their 0-based index (``*.item2index``, ``*.item2id``: id, index per
    line, tab- or space-separated); the indices must be exactly 0..n-1."""
    by_index: dict[int, str] = {}
    for lineno, line in read_lines(require_file(path, "index file")):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            raise fault(path, lineno, f"malformed row: expected 2 fields (id, index), got {len(parts)}")
        idx = parse_int(parts[1].strip(), path, lineno, "index")
        if idx in by_index:
            raise fault(path, lineno, f"index {idx} given twice ({by_index[idx]!r} and {parts[0]!r})")
        by_index[idx] = parts[0].strip()
    n = len(by_index)
    if n == 0:
        raise fault(path, None, "empty file")
    if set(by_index) != set(range(n)):
        gap = min(set(range(n)) - set(by_index))
        raise fault(path, None, f"indices are not 0..{n - 1} (index {gap} is missing)")
    ids = [by_index[k] for k in range(n)]
    dup = next((x for x, c in Counter(ids).items() if c > 1), None)
    if dup is not None:
        raise fault(path, None, f"id {dup!r} listed twice")
    return ids


Row = tuple[int, list[int], int]  # (lineno, history, target)


def read_inter(path: Path, n_users: int, n_items: int) -> dict[int, list[Row]]:
    """Rows per user index, in file order."""
    rows: dict[int, list[Row]] = defaultdict(list)
    for lineno, r in read_table(require_file(path, "interaction file"), "\t", required=(USER, HISTORY, TARGET)):
        user = parse_int(r[USER], path, lineno, USER)
        if not 0 <= user < n_users:
            raise fault(path, lineno, f"user index {user} outside 0..{n_users - 1} (user2index)")
        try:
            hist = [int(x) for x in r[HISTORY].split()]
        except ValueError:
            raise fault(path, lineno, f"column {HISTORY!r}: not a list of integers") from None
        target = parse_int(r[TARGET], path, lineno, TARGET)
        for x in (*hist, target):
            if not 0 <= x < n_items:
                raise fault(path, lineno, f"item index {x} outside 0..{n_items - 1} (item2index)")
        if not hist:
            raise fault(path, lineno, "empty history")
        rows[user].append((lineno, hist, target))
    return rows


def _check_row(path: Path, row: Row, seq: list[int], pos: int, cap: int) -> None:
    """Row must be (seq[:pos] cut to its last ``cap`` items, seq[pos])."""
    lineno, hist, target = row
    expect = seq[max(0, pos - cap) : pos]
    if target != seq[pos]:
        raise fault(path, lineno, f"target {target} disagrees with the rebuilt sequence (expected {seq[pos]})")
    if hist != expect:
        raise fault(
            path, lineno,
            f"history of {len(hist)} items is not the last {len(expect)} items before the target in the rebuilt sequence",
        )


def rebuild(
    prefix_path: Path, train: dict[int, list[Row]], valid: dict[int, list[Row]], test: dict[int, list[Row]],
    n_users: int, cap: int,
) -> tuple[list[int], list[list[int]]]:
    """(user indices, full 0-based sequences), verified against every row."""
    users, seqs = [], []
    tr_p, va_p, te_p = (Path(f"{prefix_path}.{s}.inter") for s in ("train", "valid", "test"))
    for user in range(n_users):
        va, te, tr = valid.get(user, []), test.get(user, []), train.get(user, [])
        if not va and not te and not tr:
            continue
        for path, rows, name in ((va_p, va, "valid"), (te_p, te, "test")):
            if len(rows) != 1:
                where = rows[1][0] if len(rows) > 1 else None
                raise fault(path, where, f"user index {user} has {len(rows)} {name} rows, expected exactly 1")
        # Train rows come newest first in UniSRec files; sort by history length, and for
        # histories cut to the same length keep the reverse of file order.
        ordered = [r for _, r in sorted(enumerate(tr), key=lambda kv: (len(kv[1][1]), -kv[0]))]
        start = ordered[0][1] if ordered else va[0][1]
        seq = list(start) + [r[2] for r in ordered] + [va[0][2], te[0][2]]
        p0 = len(start)
        for k, row in enumerate(ordered):
            _check_row(tr_p, row, seq, p0 + k, cap)
        if te[0][1][-1] != va[0][2]:
            raise fault(
                te_p, te[0][0],
                f"history ends with item {te[0][1][-1]} but the valid row ({va_p.name}:{va[0][0]}) has target {va[0][2]}",
            )
        if ordered and va[0][1][-1] != ordered[-1][2]:
            raise fault(
                va_p, va[0][0],
                f"history ends with item {va[0][1][-1]} but the last train row ({tr_p.name}:{ordered[-1][0]}) has target {ordered[-1][2]}",
            )
        _check_row(va_p, va[0], seq, len(seq) - 2, cap)
        _check_row(te_p, te[0], seq, len(seq) - 1, cap)
        users.append(user)
        seqs.append(seq)
    return users, seqs


def read_texts(path: Path, item_ids: list[str], ledger: Ledger) -> dict[str, str]:
    known = set(item_ids)
    texts: dict[str, str] = {}
    n = 0
    for lineno, r in read_table(require_file(path, "text file"), "\t", required=(TEXT_ID, TEXT)):
        n += 1
        iid, text = r[TEXT_ID], r[TEXT].strip()
        if iid in texts:
            raise fault(path, lineno, f"item {iid!r} has a second text row")
        if iid not in known:
            ledger.warnings["text rows for items not in item2index"] += 1
            continue
        if text:
            texts[iid] = text
    ledger.read(path, n)
    return texts


def make_items(item_ids: list[str], texts: dict[str, str]) -> tuple[list[Item], list[str]]:
    """Items in index order with their texts unchanged, plus the attribute names split out of
    the texts into each item's ``meta`` (empty, and every ``meta`` empty, when they do not split)."""
    split = split_attributes([texts.get(iid) for iid in item_ids])
    items = [Item(id=iid, text=texts.get(iid), meta=dict(a or {})) for iid, a in zip(item_ids, split.attributes)]
    return items, list(ATTRIBUTES) if split.root is not None else []


def import_unisrec(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    name: str | None = None,
    max_history: int | None = None,
) -> SequenceDataset:
    """Import a UniSRec benchmark folder, reproducing its leave-one-out split exactly.

    Args:
        src_dir: folder with ``X.train.inter``, ``X.valid.inter``, ``X.test.inter``, ``X.text``,
            ``X.item2index``, ``X.user2index``.
        name: the prefix ``X`` when the folder holds several datasets.
        max_history: how many items the files keep in a history (None: the longest history
            found, 50 for the UniSRec releases).
    """
    src = Path(src_dir)
    refuse_existing(out_dir, force)
    prefix = name or find_prefix(src)
    base = src / prefix
    if not Path(f"{base}.item2index").exists() and Path(f"{base}.item2id").exists():
        raise ImportFault(f"{base}.item2index: not found, but {prefix}.item2id is{_amazon18_hint(src)}")
    ledger = Ledger()
    item_ids = read_index(Path(f"{base}.item2index"))
    user_ids = read_index(Path(f"{base}.user2index"))
    ledger.read(f"{base}.item2index", len(item_ids))
    ledger.read(f"{base}.user2index", len(user_ids))
    parts = {}
    for split in ("train", "valid", "test"):
        path = Path(f"{base}.{split}.inter")
        parts[split] = read_inter(path, len(user_ids), len(item_ids))
        ledger.read(path, sum(len(v) for v in parts[split].values()))
    cap = max_history or max(len(r[1]) for rows in parts.values() for v in rows.values() for r in v)
    users, seqs = rebuild(base, parts["train"], parts["valid"], parts["test"], len(user_ids), cap)
    n_rows = sum(len(v) for rows in parts.values() for v in rows.values())
    ledger.outcomes["kept"] += n_rows
    missing_users = len(user_ids) - len(users)
    if missing_users:
        ledger.warnings["users in user2index without rows"] += missing_users

    text_path = Path(f"{base}.text")
    texts = read_texts(text_path, item_ids, ledger) if text_path.exists() else {}
    if not text_path.exists():
        ledger.warnings[f"no {text_path.name}: items have no text"] += 1
    no_text = sum(1 for i in item_ids if i not in texts)
    if no_text:
        ledger.warnings["items without text"] += no_text
    items, attributes = make_items(item_ids, texts)

    files = [p.name for p in sorted(src.glob(f"{prefix}.*"))]
    meta: dict[str, Any] = {
        "name": prefix,
        "source": {"format": "unisrec", "path": str(src.resolve()), "files": files, "max_history": cap},
        "filters": {
            "k_core": None,
            "min_sequence_length": None,
            "dedup": None,
            "max_sequence_length": None,
            "note": "none applied: pre-split benchmark files, split reproduced exactly",
        },
        "text": {
            "fields": ["text"],
            "template": "{text}",
            "source_file": text_path.name if text_path.exists() else None,
            **({"attributes": attributes} if attributes else {}),
        },
        "item_index": "recx index = file index + 1",
    }
    return finish(out_dir, items, [user_ids[u] for u in users], [np.asarray(s) for s in seqs], None, meta, ledger, force=force)
