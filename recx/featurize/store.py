"""The H5 embedding store: one file per (dataset, encoder, layer, pooling); row i is item index i.

Layout (DESIGN.md, "H5 embedding store")::

    embeddings   [N+1, D] float16|float32, chunked by rows; row 0 (padding) and absent rows are zeros
    present      [N+1] bool, the item had this modality
    hidden       [N+1, T, H] float16, optional: hidden states entering the top-k blocks
    hidden_mask  [N+1, T] bool, optional: their attention mask
    absent_rows  [K] int64, optional: planned rows written as absent (e.g. a broken image file)
    absent_notes [K] str, optional: why, one line each
    attrs        format_version, recx_version, encoder, source, revision, weight_hash, modality, layer,
                 pooling, max_length | image_size + mean/std, normalize, dtype, compute_dtype,
                 catalog_fingerprint, item_count, rows_planned, rows_done, rows_absent, complete

A store is written to ``<path>.partial`` one work chunk at a time.  The runner plans the items
in its own order (globally sorted by cost, see runner.py), so a chunk's rows are scattered over
the file; ``rows_done`` counts the items written so far in that plan order and is flushed after
every chunk, so an interrupted featurize recomputes the same plan and resumes after the last
finished chunk.  ``rows_planned`` is the number of items the plan holds (the present ones);
absent rows are never written and keep the fill value (zeros, ``present = False``).  A planned
row found unusable while writing (a broken image file) is written as absent the same way and
still counts in ``rows_done``; ``rows_absent`` counts those, so the resume points stay exact.
The finished file is renamed onto ``<path>`` with ``complete = True``.

Scattered writes: the partial file is opened without a chunk cache, so HDF5 writes each row
straight to its place (one write per row, whatever the catalog size) instead of reading and
rewriting whole cached chunks; ``hidden`` rows are written one hyperslab per run of consecutive
rows (a fancy-index write of [R, T, H] is cut by HDF5 into R*T pieces), and ``hidden`` is
chunked by about 64 KiB of rows (one row of a real model), so a first write to a chunk fills
little besides the row itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from recx.errors import RecxError

# 2: rows_done counts items written in plan order (1: a prefix of rows); the finished layout is
# the same, so finished version-1 stores stay readable
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
PARTIAL_SUFFIX = ".partial"
# attributes that change while a store is being written; all others identify what is written
_PROGRESS_ATTRS = ("rows_done", "rows_absent", "complete")


class StoreError(RecxError):
    """An H5 store is missing, unreadable or malformed; the message names the file."""


class StoreMismatchError(RecxError):
    """A store does not belong to the dataset or request it is used with; the message names the mismatch."""


def partial_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def _to_attr(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.float64) if all(isinstance(v, (int, float)) for v in value) else json.dumps(list(value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _from_attr(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [v.item() for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def read_attrs(f: h5py.File) -> dict[str, Any]:
    return {k: _from_attr(v) for k, v in f.attrs.items()}


@dataclass
class EmbeddingStore:
    """A finished store loaded into memory.

    Attributes:
        embeddings: float32 [N+1, D]; row 0 and rows of items without the modality are zeros.
        present: bool [N+1]; ``present[0]`` is False.
        attrs: every H5 attribute as plain Python values.
    """

    path: Path
    embeddings: np.ndarray
    present: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def modality(self) -> str:
        return str(self.attrs.get("modality", ""))

    @property
    def num_items(self) -> int:
        return int(self.embeddings.shape[0]) - 1

    @property
    def has_hidden(self) -> bool:
        """Whether the store caches the hidden states entering the top-k blocks."""
        return int(self.attrs.get("cache_top_k", 0)) > 0

    @property
    def digest(self) -> str:
        """sha256 of the store's content (``embeddings`` and ``present``): what a run records and
        checks, so a re-featurized store is never used silently.  Stores written before the
        ``content_sha256`` attribute get it computed here from the same bytes."""
        recorded = self.attrs.get("content_sha256")
        if recorded:
            return str(recorded)
        dtype = np.dtype(str(self.attrs.get("dtype", "float16")))
        return content_digest(self.embeddings.astype(dtype, copy=False), self.present)

    def read_hidden(self, rows: np.ndarray, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Cached hidden states of ``rows`` (int indices, any order): (``dtype`` [B, T, H], bool [B, T])."""
        if not self.has_hidden:
            raise StoreError(f"{self.path}: no cached hidden states (featurize with --cache-top-k K)")
        uniq, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        with _open_h5(self.path) as f:
            hidden = _read_rows(f["hidden"], uniq).astype(dtype, copy=False)
            mask = _read_rows(f["hidden_mask"], uniq).astype(bool, copy=False)
        return hidden[inverse], mask[inverse]


def content_digest(embeddings: np.ndarray, present: np.ndarray, rows_per_block: int = 65536) -> str:
    """sha256 over the stored embeddings (in their storage dtype, row blocks) and the present mask."""
    h = hashlib.sha256(b"recx-store-content-v1")
    h.update(f"{embeddings.dtype.str}{tuple(embeddings.shape)}".encode())
    for start in range(0, len(embeddings), rows_per_block):
        h.update(np.ascontiguousarray(embeddings[start : start + rows_per_block]).tobytes())
    h.update(np.ascontiguousarray(present, dtype=np.bool_).tobytes())
    return h.hexdigest()


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """(a, b) index ranges of ``rows`` (increasing) whose values are consecutive: rows[a:b] is one run."""
    cuts = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
    return [(a, b) for a, b in zip([0, *cuts], [*cuts, len(rows)]) if b > a]


def _read_rows(dset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dset[rows]`` for sorted unique rows, one slice read per run of consecutive rows: on 400
    scattered rows of a [1683, 64, 384] float16 cache, 0.09 ms per row against 1.47 ms for h5py's
    fancy index (equal for one contiguous run)."""
    parts = [dset[int(rows[a]) : int(rows[b - 1]) + 1] for a, b in _runs(rows)]
    return dset[0:0] if not parts else parts[0] if len(parts) == 1 else np.concatenate(parts)


def _open_h5(path: Path, mode: str = "r") -> h5py.File:
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: not a readable HDF5 store ({str(e).splitlines()[0]})") from None


def open_store(path: str | os.PathLike) -> EmbeddingStore:
    """Load a finished store. Raises StoreError naming the file if it is missing, corrupt or unfinished."""
    path = Path(path)
    if not path.is_file():
        if partial_path(path).is_file():
            raise StoreError(f"{path}: featurize did not finish ({partial_path(path).name} exists); rerun it to resume")
        raise StoreError(f"{path}: no such store; create it with `recx featurize`")
    with _open_h5(path) as f:
        for name in ("embeddings", "present"):
            if name not in f:
                raise StoreError(f"{path}: not a recx store (no '{name}' dataset)")
        try:
            embeddings = f["embeddings"][...].astype(np.float32, copy=False)
            present = f["present"][...].astype(np.bool_, copy=False)
        except (OSError, ValueError, TypeError) as e:
            raise StoreError(f"{path}: unreadable data ({str(e).splitlines()[0]})") from None
        attrs = read_attrs(f)
    if embeddings.ndim != 2 or present.shape != (embeddings.shape[0],):
        raise StoreError(f"{path}: malformed: embeddings {embeddings.shape}, present {present.shape}")
    return EmbeddingStore(path=path, embeddings=embeddings, present=present, attrs=attrs)


def store_digest(path: str | os.PathLike) -> str:
    """The content sha256 of a finished store (its ``content_sha256`` attribute, read without
    loading the data; computed for stores written before the attribute existed)."""
    path = Path(path)
    if path.is_file():
        with _open_h5(path) as f:
            recorded = f.attrs.get("content_sha256")
        if recorded is not None:
            return str(_from_attr(recorded))
    return open_store(path).digest


def check_store(store: EmbeddingStore, dataset: Any, expect: Mapping[str, Any] | None = None) -> None:
    """Refuse a store that does not fit ``dataset`` (a SequenceDataset) or the attributes in ``expect``.

    Raises StoreMismatchError naming the first mismatch: unfinished file, format version,
    catalog fingerprint, item count, or any ``expect`` key (e.g. ``{"modality": "text"}``).
    """
    where = store.path
    attrs = store.attrs
    if not attrs.get("complete", False):
        raise StoreMismatchError(f"{where}: incomplete store (complete=false); rerun `recx featurize` to finish it")
    version = attrs.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise StoreMismatchError(f"{where}: store format version {version}, this recx reads {readable}")
    fp = attrs.get("catalog_fingerprint")
    if fp != dataset.catalog_fingerprint:
        raise StoreMismatchError(
            f"{where}: catalog fingerprint {str(fp)[:12]} does not match dataset {dataset.path} "
            f"({dataset.catalog_fingerprint[:12]}); re-featurize this dataset"
        )
    if attrs.get("item_count") != dataset.num_items or store.num_items != dataset.num_items:
        raise StoreMismatchError(
            f"{where}: item count {attrs.get('item_count')} (rows {store.embeddings.shape[0]}) "
            f"does not match dataset {dataset.path} ({dataset.num_items} items)"
        )
    for key, want in (expect or {}).items():
        have = attrs.get(key)
        if have != want and not (isinstance(want, (tuple, list)) and list(want) == have):
            raise StoreMismatchError(f"{where}: attribute {key}={have!r}, expected {want!r}")


def check_replaceable_store(path: Path, force: bool) -> None:
    """Refuse to write ``path`` if it exists, unless ``force`` and it is a store recx wrote."""
    if not path.exists():
        return
    if not force:
        raise StoreError(f"{path}: a finished store already exists; pass --force to replace it")
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a store; choose another --out")
    try:
        with h5py.File(path, "r") as f:
            ours = "embeddings" in f and "present" in f and "format_version" in f.attrs
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise StoreError(f"{path}: not a recx store, so --force does not replace it (nothing was changed); choose another --out")


def _hidden_chunk_rows(num_rows: int, t: int, h: int) -> int:
    """Rows per HDF5 chunk of ``hidden``: about 64 KiB (one row for real models), at most 64."""
    return max(1, min(64, num_rows, (64 << 10) // max(1, t * h * 2)))


class StoreWriter:
    """Writes a store one work chunk at a time into ``<path>.partial``; :meth:`finish` renames it onto ``path``.

    ``planned`` is the number of items the caller will write (each row once, in any order);
    ``rows_done`` counts those written so far.  Resuming: when a partial file with the same
    identifying attributes (``planned`` included) exists (and ``resume``), writing continues
    at its ``rows_done``; otherwise the partial file is started over.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_rows: int,
        dim: int,
        attrs: Mapping[str, Any],
        dtype: str = "float16",
        chunk_rows: int = 1024,
        force: bool = False,
        resume: bool = True,
        hidden_shape: tuple[int, int] | None = None,
        *,
        planned: int,
    ):
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        if dtype not in ("float16", "float32"):
            raise ValueError(f"store dtype must be float16 or float32, not {dtype!r}")
        if not 0 <= planned < max(1, num_rows):
            raise ValueError(f"{planned} items planned for {num_rows} rows (row 0 is padding)")
        check_replaceable_store(self.path, force)
        self.num_rows = num_rows
        self.rows_planned = int(planned)
        self.force = force
        self.chunk_rows = max(1, min(chunk_rows, num_rows))
        ident = {k: v for k, v in attrs.items() if v is not None and k not in _PROGRESS_ATTRS}
        ident.update(format_version=FORMAT_VERSION, dtype=dtype, chunk_rows=int(chunk_rows), rows_planned=self.rows_planned)
        if hidden_shape is not None:
            ident["hidden_shape"] = list(hidden_shape)
        self.resumed_from = 0
        self.f = self._reopen(ident) if resume else None
        if self.f is None:
            self.f = self._create(ident, dim, dtype, hidden_shape)

    # -- creation / resumption -------------------------------------------------------------
    def _reopen(self, ident: dict[str, Any]) -> h5py.File | None:
        if not self.tmp.is_file():
            return None
        try:
            f = h5py.File(self.tmp, "r+", rdcc_nbytes=0)
        except (OSError, ValueError):
            return None  # killed mid-write: start over
        try:
            have = read_attrs(f)
            same = all(have.get(k) == _from_attr(_to_attr(v)) for k, v in ident.items())
            if same and "embeddings" in f and "present" in f and f["embeddings"].shape[0] == self.num_rows:
                self.resumed_from = int(have.get("rows_done", 0))
                return f
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # damaged metadata: start over
        f.close()
        return None

    def _create(self, ident: dict[str, Any], dim: int, dtype: str, hidden_shape: tuple[int, int] | None) -> h5py.File:
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.unlink(missing_ok=True)
        # no chunk cache: rows arrive scattered, and writing each straight to the file costs one
        # write per row, where a cache smaller than the data re-reads and rewrites whole chunks
        f = h5py.File(self.tmp, "w", rdcc_nbytes=0)
        f.create_dataset("embeddings", shape=(self.num_rows, dim), dtype=dtype, chunks=(self.chunk_rows, dim), fillvalue=0)
        f.create_dataset("present", shape=(self.num_rows,), dtype=bool, chunks=(self.chunk_rows,), fillvalue=False)
        if hidden_shape is not None:
            t, h = hidden_shape
            rows = _hidden_chunk_rows(self.num_rows, t, h)
            f.create_dataset("hidden", shape=(self.num_rows, t, h), dtype="float16", chunks=(rows, t, h), fillvalue=0)
            f.create_dataset("hidden_mask", shape=(self.num_rows, t), dtype=bool, chunks=(min(64, self.num_rows), t), fillvalue=False)
        for k, v in ident.items():
            f.attrs[k] = _to_attr(v)
        f.attrs["rows_done"] = 0
        f.attrs["rows_absent"] = 0
        f.attrs["complete"] = False
        f.flush()
        return f

    # -- writing ---------------------------------------------------------------------------
    @property
    def rows_done(self) -> int:
        """Items written so far (in the caller's plan order), not a row number."""
        return int(self.f.attrs["rows_done"])

    @property
    def rows_absent(self) -> int:
        """Planned items written as absent so far (included in ``rows_done``)."""
        return int(self.f.attrs.get("rows_absent", 0))

    def absent_notes(self) -> dict[int, str]:
        """{row: why it was written as absent} for every planned row written as absent so far."""
        if "absent_rows" not in self.f:
            return {}
        rows = self.f["absent_rows"][...]
        notes = self.f["absent_notes"].asstr()[...].tolist()
        # a chunk redone after an interruption appends its notes again (the last write wins), and a
        # row noted by an unfinished write may since have been written present
        absent = ~self.f["present"][...][rows] if len(rows) else np.zeros(0, dtype=bool)
        latest = {int(r): n for r, n, a in zip(rows, notes, absent) if a}
        return dict(sorted(latest.items()))

    @property
    def attrs(self) -> dict[str, Any]:
        return read_attrs(self.f)

    def set_attr(self, key: str, value: Any) -> None:
        """Record a decision made while writing (e.g. the compute dtype) so a resume reuses it."""
        self.f.attrs[key] = _to_attr(value)
        self.f.flush()

    def write_rows(
        self,
        rows: np.ndarray,
        embeddings: np.ndarray,
        hidden: np.ndarray | None = None,
        hidden_mask: np.ndarray | None = None,
        present: np.ndarray | None = None,
        notes: Mapping[int, str] | None = None,
    ) -> None:
        """Write the items at ``rows`` (any order, each once), mark them present and advance ``rows_done``.

        Rows whose ``present`` is False are written as absent (zeros, ``present = False``) but
        still count as done, and in ``rows_absent``.

        Args:
            rows: [R] int row indices (>= 1); embeddings: [R, D] float; hidden: [R, T, H]; hidden_mask: [R, T].
            present: [R] bool, default all True.
            notes: {row: why it is absent} for rows written as absent (kept in ``absent_notes``).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(rows)
        if len(embeddings) != n:
            raise ValueError(f"{n} rows but {len(embeddings)} embeddings")
        keep = np.ones(n, dtype=bool) if present is None else np.asarray(present, dtype=bool).reshape(-1)
        if len(keep) != n:
            raise ValueError(f"{n} rows but {len(keep)} present flags")
        if notes and not set(notes) <= set(rows[~keep].tolist()):
            raise ValueError("notes given for rows not written as absent")
        if (hidden is not None) != ("hidden" in self.f):
            raise ValueError(f"{self.tmp}: hidden states {'missing' if hidden is None else 'given'} for a store "
                             f"{'with' if 'hidden' in self.f else 'without'} a hidden dataset")
        if self.rows_done + n > self.rows_planned:
            raise ValueError(f"{self.tmp}: {self.rows_done} + {n} items exceed the {self.rows_planned} planned")
        order = np.argsort(rows, kind="stable")
        rows, keep = rows[order], keep[order]  # h5py writes need increasing indices
        if n and (rows[0] < 1 or rows[-1] >= self.num_rows or bool((np.diff(rows) == 0).any())):
            raise ValueError(f"rows must be distinct and in 1..{self.num_rows - 1}")
        if n:
            self.f["embeddings"][rows] = _zero_absent(np.asarray(embeddings)[order], keep)
            self.f["present"][rows] = keep
            if hidden is not None:
                _write_runs(self.f["hidden"], rows, _zero_absent(np.asarray(hidden)[order], keep))
                self.f["hidden_mask"][rows] = _zero_absent(np.asarray(hidden_mask)[order], keep)
        if notes:
            self._append_notes(notes)
        self.f.attrs["rows_absent"] = self.rows_absent + int(n - keep.sum())
        self.f.attrs["rows_done"] = self.rows_done + n
        self.f.flush()

    def _append_notes(self, notes: Mapping[int, str]) -> None:
        """Append {row: note} to ``absent_rows`` / ``absent_notes`` (created on first use)."""
        if "absent_rows" not in self.f:
            self.f.create_dataset("absent_rows", shape=(0,), maxshape=(None,), dtype="int64", chunks=(256,))
            self.f.create_dataset("absent_notes", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(), chunks=(256,))
        rows, texts = self.f["absent_rows"], self.f["absent_notes"]
        k = rows.shape[0]
        rows.resize((k + len(notes),))
        texts.resize((k + len(notes),))
        rows[k:] = np.fromiter(notes.keys(), dtype=np.int64, count=len(notes))
        texts[k:] = list(notes.values())

    def finish(self, force: bool | None = None) -> Path:
        """Mark complete, close and rename onto the final path (``force`` defaults to the constructor's)."""
        force = self.force if force is None else force
        if self.rows_done != self.rows_planned:
            raise ValueError(f"{self.tmp}: {self.rows_done} of {self.rows_planned} planned items written")
        present = int(np.count_nonzero(self.f["present"][...]))
        if present + self.rows_absent != self.rows_planned:
            raise ValueError(f"{self.tmp}: {present} rows present, {self.rows_planned} planned, {self.rows_absent} of them "
                             "written as absent (a row was written twice)")
        self.f.attrs["content_sha256"] = content_digest(self.f["embeddings"], self.f["present"][...])
        self.f.attrs["complete"] = True
        self.f.close()
        if self.path.exists() and not force:
            raise StoreError(f"{self.path}: a finished store appeared while writing; pass --force to replace it")
        check_replaceable_store(self.path, force)
        os.replace(self.tmp, self.path)
        return self.path

    def close(self) -> None:
        """Close without finishing (the partial file stays for a later resume)."""
        if self.f.id.valid:
            self.f.close()


def _zero_absent(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` [R, ...] with the rows where ``keep`` [R] is False zeroed (a copy only if any is)."""
    if keep.all():
        return values
    values = values.copy()
    values[~keep] = 0
    return values


def _write_runs(ds: h5py.Dataset, rows: np.ndarray, values: np.ndarray) -> None:
    """``ds[rows] = values`` for increasing ``rows``, one hyperslab write per run of consecutive rows."""
    fspace = ds.id.get_space()
    for a, b in _runs(rows):
        block = np.ascontiguousarray(values[a:b], dtype=ds.dtype)
        fspace.select_hyperslab((int(rows[a]),) + (0,) * (ds.ndim - 1), block.shape)
        ds.id.write(h5py.h5s.create_simple(block.shape), fspace, block)
