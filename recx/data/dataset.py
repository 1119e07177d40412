"""The dataset directory: the contract between importers and every later stage.

Layout (see DESIGN.md, "Dataset directory")::

    DIR/dataset.json     metadata: source, filters, text template, counts, fingerprints
    DIR/items.jsonl      line k (0-based) describes item index k+1: {"id", "text", "image", "meta"}
    DIR/users.jsonl      line u describes user u: {"id"}
    DIR/sequences.npz    offsets int64 [U+1], items int32 [nnz] (indices 1..N), timestamps int64 [nnz]

Item indices are dense, 1..N; 0 is padding.  User u's time-ordered sequence is
``items[offsets[u]:offsets[u+1]]``.  The split is leave-one-out: train on ``seq[:-2]``,
validate on ``seq[-2]`` (history ``seq[:-2]``), test on ``seq[-1]`` (history ``seq[:-1]``).

Two fingerprints: ``catalog_fingerprint`` covers item ids, texts and image paths (what an H5
store depends on); ``fingerprint`` covers the catalog and every sequence (what a run depends on).
Re-splitting users therefore never invalidates a featurized store, while any change to the
items does.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from recx.artifacts import DATASET, atomic_folder, check_replaceable
from recx.errors import RecxError

FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
ITEMS_FILE = "items.jsonl"
USERS_FILE = "users.jsonl"
SEQUENCES_FILE = "sequences.npz"
MIN_SEQUENCE_LENGTH = 3  # leave-one-out needs one train, one valid and one test item


class DatasetError(RecxError, ValueError):
    """A dataset directory is missing, malformed or inconsistent; the message names the file."""


@dataclass
class Item:
    """One catalog item as an importer produces it."""

    id: str
    text: str | None = None
    image: str | None = None  # path relative to the dataset's image_root, or absolute
    meta: dict[str, Any] = field(default_factory=dict)


def _sha256_update_strings(h: "hashlib._Hash", values: Iterable[str | None]) -> None:
    for v in values:
        h.update(b"\x00" if v is None else v.encode("utf-8"))
        h.update(b"\x1f")


def catalog_fingerprint(items: Sequence[Item]) -> str:
    """sha256 over item ids, texts and image paths, in index order."""
    h = hashlib.sha256(b"recx-catalog-v1")
    _sha256_update_strings(h, (it.id for it in items))
    _sha256_update_strings(h, (it.text for it in items))
    _sha256_update_strings(h, (it.image for it in items))
    return h.hexdigest()


def dataset_fingerprint(catalog_fp: str, offsets: np.ndarray, seq_items: np.ndarray) -> str:
    """sha256 over the catalog fingerprint and every user's sequence."""
    h = hashlib.sha256(b"recx-dataset-v1")
    h.update(catalog_fp.encode())
    h.update(np.ascontiguousarray(offsets, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(seq_items, dtype="<i4").tobytes())
    return h.hexdigest()


def write_dataset(
    out_dir: str | os.PathLike,
    items: Sequence[Item],
    user_ids: Sequence[str],
    sequences: Sequence[Sequence[int]],
    meta: dict[str, Any],
    timestamps: Sequence[Sequence[int]] | None = None,
    image_root: str | os.PathLike | None = None,
    force: bool = False,
    populate: Callable[[Path], None] | None = None,
) -> "SequenceDataset":
    """Write a dataset directory atomically (temp folder, then rename).

    Args:
        items: the catalog, ``items[k]`` gets index ``k+1``.
        user_ids: original user ids, one per sequence.
        sequences: per user, time-ordered item indices in ``1..len(items)``.
        meta: importer metadata merged into dataset.json (``source``, ``filters``, ``text``, ...).
        timestamps: per user, one integer per interaction (optional).
        image_root: folder that relative image paths are resolved against; None means the
            dataset directory itself (for importers that copy or draw images into it).
        force: replace an existing dataset directory, only if recx wrote it (``dataset.json``) and
            it holds nothing else; any other folder is refused, never deleted.
        populate: called with the temporary folder before the rename, to write extra files
            (e.g. ``images/``) that become part of the dataset atomically.
    """
    out = Path(out_dir).resolve()  # `--out .` names the current folder, whose Path has no name
    check_replaceable(out, DATASET, force, error=DatasetError)
    if len(user_ids) != len(sequences):
        raise DatasetError(f"{out}: {len(user_ids)} user ids but {len(sequences)} sequences")
    n_items = len(items)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    seq_items = (
        np.concatenate([np.asarray(s, dtype=np.int32) for s in sequences])
        if len(sequences)
        else np.zeros(0, dtype=np.int32)
    )
    if seq_items.size and (seq_items.min() < 1 or seq_items.max() > n_items):
        raise DatasetError(f"{out}: sequences hold item indices outside 1..{n_items}")
    if lengths.size and lengths.min() < MIN_SEQUENCE_LENGTH:
        raise DatasetError(
            f"{out}: {int((lengths < MIN_SEQUENCE_LENGTH).sum())} users have fewer than "
            f"{MIN_SEQUENCE_LENGTH} interactions (leave-one-out needs train, valid and test items)"
        )
    if timestamps is not None:
        ts = np.concatenate([np.asarray(t, dtype=np.int64) for t in timestamps]) if len(timestamps) else np.zeros(0, np.int64)
        if ts.shape != seq_items.shape:
            raise DatasetError(f"{out}: timestamps do not align with sequences")
    else:
        ts = np.zeros(0, dtype=np.int64)

    cat_fp = catalog_fingerprint(items)
    full = dict(meta)
    full.update(
        format_version=FORMAT_VERSION,
        split="leave-one-out",
        image_root=str(Path(image_root).resolve()) if image_root is not None else None,
        counts=dict(
            users=len(sequences),
            items=n_items,
            interactions=int(seq_items.size),
            with_text=sum(1 for it in items if it.text),
            with_image=sum(1 for it in items if it.image),
        ),
        catalog_fingerprint=cat_fp,
        fingerprint=dataset_fingerprint(cat_fp, offsets, seq_items),
    )

    with atomic_folder(out) as tmp:
        with open(tmp / ITEMS_FILE, "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps({"id": it.id, "text": it.text, "image": it.image, "meta": it.meta}, ensure_ascii=False))
                f.write("\n")
        with open(tmp / USERS_FILE, "w", encoding="utf-8") as f:
            for uid in user_ids:
                f.write(json.dumps({"id": str(uid)}, ensure_ascii=False))
                f.write("\n")
        np.savez(tmp / SEQUENCES_FILE, offsets=offsets, items=seq_items, timestamps=ts)
        if populate is not None:
            populate(tmp)
        with open(tmp / DATASET_JSON, "w", encoding="utf-8") as f:  # the marker: written last
            json.dump(full, f, indent=2, ensure_ascii=False)
            f.write("\n")
        check_replaceable(out, DATASET, force, error=DatasetError)  # nothing appeared meanwhile that is not ours
    return SequenceDataset(out)


def user_sample(num_users: int, size: int, seed: int) -> np.ndarray | None:
    """[size] sorted user indices, a seeded random sample without replacement; None (all
    users) when ``size`` is 0 or not below ``num_users``."""
    if size <= 0 or size >= num_users:
        return None
    return np.sort(np.random.default_rng(seed).choice(num_users, size=size, replace=False))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    return rows


class SequenceDataset:
    """Read-only view of a dataset directory.

    Attributes:
        num_items: N; valid item indices are 1..N.
        num_users: U.
        item_ids: list of length N+1, ``item_ids[0] == ""`` (padding).
        texts / image_paths: lists of length N+1 (None where the item lacks that modality).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / DATASET_JSON
        if not meta_path.is_file():
            raise DatasetError(f"{self.path}: not a recx dataset (no {DATASET_JSON}); create one with `recx data import` or `recx data synth`")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{meta_path}: not valid JSON ({e.msg})") from None
        for name in (ITEMS_FILE, USERS_FILE, SEQUENCES_FILE):
            if not (self.path / name).is_file():
                raise DatasetError(f"{self.path / name}: missing")
        rows = _read_jsonl(self.path / ITEMS_FILE)
        self.item_ids: list[str] = [""] + [str(r["id"]) for r in rows]
        self.texts: list[str | None] = [None] + [r.get("text") for r in rows]
        self._images: list[str | None] = [None] + [r.get("image") for r in rows]
        self.item_meta: list[dict[str, Any]] = [{}] + [r.get("meta") or {} for r in rows]
        self.user_ids: list[str] = [str(r["id"]) for r in _read_jsonl(self.path / USERS_FILE)]
        try:
            with np.load(self.path / SEQUENCES_FILE) as z:
                self.offsets = z["offsets"].astype(np.int64)
                self.items = z["items"].astype(np.int64)
                self.timestamps = z["timestamps"].astype(np.int64) if z["timestamps"].size else None
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{self.path / SEQUENCES_FILE}: unreadable ({type(e).__name__}: {e}); "
                               "the file is damaged or truncated: import the dataset again") from None
        self._validate()

    def _validate(self) -> None:
        counts = self.meta.get("counts", {})
        where = self.path / SEQUENCES_FILE
        if len(self.offsets) != self.num_users + 1:
            raise DatasetError(f"{where}: {len(self.offsets) - 1} sequences but {self.num_users} users in {USERS_FILE}")
        if counts and (counts.get("items") != self.num_items or counts.get("users") != self.num_users):
            raise DatasetError(f"{self.path / DATASET_JSON}: counts do not match the files (items {counts.get('items')} vs {self.num_items}, users {counts.get('users')} vs {self.num_users})")
        if self.items.size and (self.items.min() < 1 or self.items.max() > self.num_items):
            raise DatasetError(f"{where}: item indices outside 1..{self.num_items}")

    # -- catalog ---------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        return len(self.item_ids) - 1

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def catalog_fingerprint(self) -> str:
        return str(self.meta["catalog_fingerprint"])

    @property
    def image_root(self) -> Path:
        """The folder relative image paths resolve against (the dataset folder when none is recorded)."""
        return Path(self.meta.get("image_root") or self.path)

    @property
    def image_paths(self) -> list[str | None]:
        """Absolute image paths (None where missing), length N+1."""
        root = str(self.image_root)
        return [None if p is None else os.path.join(root, p) for p in self._images]

    def index_of(self, item_id: str) -> int:
        """Item index for an original id; raises KeyError naming the id."""
        if not hasattr(self, "_id_to_index"):
            self._id_to_index = {iid: i for i, iid in enumerate(self.item_ids) if i > 0}
        try:
            return self._id_to_index[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r} in {self.path}") from None

    def has_text(self) -> np.ndarray:
        """[N+1] bool."""
        return np.array([bool(t) for t in self.texts], dtype=bool)

    def has_image(self) -> np.ndarray:
        """[N+1] bool."""
        return np.array([p is not None for p in self._images], dtype=bool)

    # -- sequences -------------------------------------------------------------------------
    def sequence(self, user: int) -> np.ndarray:
        """Full time-ordered sequence of user ``user`` (int64 item indices)."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def sequences(self) -> list[np.ndarray]:
        return [self.sequence(u) for u in range(self.num_users)]

    def train_sequences(self) -> list[np.ndarray]:
        """``seq[:-2]`` per user: every prefix predicts its next item during training."""
        return [s[:-2] for s in self.sequences()]

    def split(self, name: str) -> tuple[list[np.ndarray], np.ndarray]:
        """(histories, targets) for ``valid`` (history ``seq[:-2]``) or ``test`` (``seq[:-1]``)."""
        if name == "valid":
            cut = 2
        elif name == "test":
            cut = 1
        else:
            raise ValueError(f"unknown split {name!r}; expected 'valid' or 'test'")
        seqs = self.sequences()
        histories = [s[: len(s) - cut] for s in seqs]
        targets = np.array([s[len(s) - cut] for s in seqs], dtype=np.int64)
        return histories, targets

    def item_popularity(self) -> np.ndarray:
        """[N+1] interaction counts over the training part (``seq[:-2]``) of every user."""
        train = self.train_sequences()
        flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=self.num_items + 1).astype(np.int64)

    def __repr__(self) -> str:
        return f"SequenceDataset({str(self.path)!r}, users={self.num_users}, items={self.num_items})"
