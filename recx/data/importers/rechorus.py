"""ReChorus layout (pre-split leave-one-out), tab separated with header rows::

    train.csv   user_id  item_id  time
    dev.csv     user_id  item_id  time  neg_items     one row per user: the second-to-last item
    test.csv    user_id  item_id  time  neg_items     one row per user: the last item
    X.item2index   original id (ASIN) -> item_id (no header)
    X.text         id  text   keyed by the original id

``neg_items`` (sampled negatives) are ignored: recx ranks the full catalog.  Each user's
sequence is the train rows by time (ties in file order), then the dev item, then the test item;
the dev and test rows must not be older than the user's train rows (a fault otherwise), so the
given split is reproduced exactly.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from recx.data.dataset import Item, SequenceDataset
from recx.data.importers.pipeline import Ledger, finish, refuse_existing
from recx.data.importers.reading import ImportFault, fault, parse_int, read_lines, read_table, require_file

COLS = ("user_id", "item_id", "time")


def _single(src: Path, pattern: str, what: str) -> Path | None:
    found = sorted(src.glob(pattern))
    if len(found) > 1:
        raise ImportFault(f"{src}: several {what} files ({', '.join(p.name for p in found)})")
    return found[0] if found else None


def import_rechorus(src: str | os.PathLike, out_dir: str | os.PathLike, force: bool = False) -> SequenceDataset:
    """Import a ReChorus folder, reproducing its train/dev/test split exactly."""
    src_p = Path(src)
    if not src_p.is_dir():
        raise ImportFault(f"{src_p}: not a directory (expected the ReChorus layout train.csv, dev.csv, test.csv)")
    refuse_existing(out_dir, force)
    ledger = Ledger()
    rows: dict[str, dict[int, list[tuple[int, int, int]]]] = {}
    item_codes: set[int] = set()
    for split in ("train", "dev", "test"):
        path = require_file(src_p / f"{split}.csv", f"{split}.csv")
        per_user: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        n = 0
        for lineno, r in read_table(path, "\t", required=COLS):
            n += 1
            u = parse_int(r["user_id"], path, lineno, "user_id")
            i = parse_int(r["item_id"], path, lineno, "item_id")
            t = parse_int(r["time"], path, lineno, "time")
            per_user[u].append((t, i, lineno))
            item_codes.add(i)
        rows[split] = per_user
        ledger.read(path, n)

    # catalog: item2index gives the original ids; without it the numeric ids are the ids
    index_file = _single(src_p, "*.item2index", "item2index")
    by_code: dict[int, str] = {}
    if index_file is not None:
        n = 0
        for lineno, line in read_lines(index_file):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise fault(index_file, lineno, f"malformed row: expected 2 tab-separated fields (id, index), got {len(parts)}")
            code = parse_int(parts[1], index_file, lineno, "index")
            if code in by_code:
                raise fault(index_file, lineno, f"index {code} given twice")
            by_code[code] = parts[0]
            n += 1
        ledger.read(index_file, n)
        unknown = sorted(item_codes - set(by_code))
        if unknown:
            raise ImportFault(f"{index_file}: item_id {unknown[0]} used in the interactions is not listed")
    else:
        by_code = {c: str(c) for c in item_codes}
    codes = sorted(by_code)
    position = {c: k for k, c in enumerate(codes)}
    texts: dict[str, str] = {}
    text_file = _single(src_p, "*.text", "text")
    if text_file is not None:
        known = set(by_code.values())
        n = 0
        for lineno, r in read_table(text_file, "\t", required=("id", "text")):
            n += 1
            if r["id"] not in known:
                ledger.warnings["text rows for items not in item2index"] += 1
            elif r["text"].strip():
                texts[r["id"]] = " ".join(r["text"].split())
        ledger.read(text_file, n)

    users, seqs, stamps = [], [], []
    all_users = sorted(set(rows["train"]) | set(rows["dev"]) | set(rows["test"]))
    for u in all_users:
        dev, test = rows["dev"].get(u, []), rows["test"].get(u, [])
        for split, got in (("dev", dev), ("test", test)):
            if len(got) != 1:
                line = got[1][2] if len(got) > 1 else None
                raise fault(src_p / f"{split}.csv", line, f"user {u} has {len(got)} rows, expected exactly 1")
        train = sorted(rows["train"].get(u, []), key=lambda x: (x[0], x[2]))
        last_train = train[-1][0] if train else None
        if last_train is not None and dev[0][0] < last_train:
            raise fault(src_p / "dev.csv", dev[0][2], f"user {u}: dev interaction is older than the user's last train interaction")
        if test[0][0] < dev[0][0]:
            raise fault(src_p / "test.csv", test[0][2], f"user {u}: test interaction is older than the dev interaction")
        full = train + dev + test
        if len(full) < 3:
            ledger.outcomes["filtered: min sequence length"] += len(full)
            continue
        ledger.outcomes["kept"] += len(full)
        users.append(str(u))
        seqs.append(np.array([position[i] for _, i, _ in full], dtype=np.int64))
        stamps.append(np.array([t for t, _, _ in full], dtype=np.int64))
    if not users:
        raise ImportFault(f"{src_p}: no user has 3 or more interactions")
    items = [Item(id=by_code[c], text=texts.get(by_code[c]), meta={"rechorus_id": c}) for c in codes]
    if text_file is not None:
        n = sum(1 for it in items if not it.text)
        if n:
            ledger.warnings["items without text"] += n
    meta = {
        "name": index_file.name.split(".")[0] if index_file else src_p.name,
        "source": {
            "format": "rechorus",
            "path": str(src_p.resolve()),
            "files": ["train.csv", "dev.csv", "test.csv"] + [p.name for p in (index_file, text_file) if p],
            "ignored": "neg_items (sampled negatives)",
        },
        "filters": {"k_core": None, "min_sequence_length": 3, "dedup": None, "max_sequence_length": None,
                    "note": "pre-split files: sequence = train by time (ties in file order) + dev + test"},
        "text": {"fields": ["text"], "template": "{text}", "source_file": text_file.name} if text_file else None,
        "item_index": "items ordered by ReChorus item_id",
    }
    return finish(out_dir, items, users, seqs, stamps, meta, ledger, force=force)
