from pathlib import Path

import h5py
import numpy as np
import pytest

from recx.featurize.store import (
    StoreError,
    StoreMismatchError,
    StoreWriter,
    check_store,
    open_store,
    partial_path,
)

ATTRS = {"encoder": "e", "modality": "text", "pooling": "mean", "catalog_fingerprint": "abc", "item_count": 4}


def _write(path: Path, emb: np.ndarray, present: np.ndarray, attrs=ATTRS, chunk_rows=2, dtype="float32", force=False) -> Path:
    """The present rows in reverse order, two per write_rows call."""
    rows = np.flatnonzero(present)[::-1]
    w = StoreWriter(path, len(emb), emb.shape[1], attrs, dtype=dtype, chunk_rows=chunk_rows, force=force, planned=len(rows))
    for i in range(0, len(rows), 2):
        w.write_rows(rows[i : i + 2], emb[rows[i : i + 2]])
    return w.finish(force=force)


class FakeDataset:
    def __init__(self, fp="abc", n=4, path="ds"):
        self.catalog_fingerprint, self.num_items, self.path = fp, n, Path(path)


def test_round_trip_exact(tmp_path):
    emb = np.arange(5 * 3, dtype=np.float32).reshape(5, 3) / 7
    emb[0] = 0
    present = np.array([False, True, True, False, True])
    emb[3] = 0
    path = _write(tmp_path / "s.h5", emb, present)
    store = open_store(path)
    np.testing.assert_array_equal(store.embeddings, emb)
    np.testing.assert_array_equal(store.present, present)
    assert store.embeddings.dtype == np.float32 and store.present.dtype == np.bool_
    assert (store.dim, store.modality, store.num_items, store.path) == (3, "text", 4, path)
    assert store.attrs["complete"] is True and store.attrs["rows_done"] == 3 == store.attrs["rows_planned"]
    assert store.attrs["format_version"] == 2 and store.attrs["dtype"] == "float32"
    assert not partial_path(path).exists()
    with h5py.File(path) as f:
        assert f["embeddings"].chunks == (2, 3)
    check_store(store, FakeDataset(), {"modality": "text", "pooling": "mean"})


def test_float16_storage_reads_as_float32(tmp_path):
    emb = np.array([[0, 0], [0.1, -2.5], [1 / 3, 7]], dtype=np.float32)
    store = open_store(_write(tmp_path / "s.h5", emb, np.array([0, 1, 1], bool), dtype="float16"))
    assert store.embeddings.dtype == np.float32
    np.testing.assert_array_equal(store.embeddings, emb.astype(np.float16).astype(np.float32))


def test_mismatches_are_named(tmp_path):
    emb = np.zeros((5, 2), np.float32)
    store = open_store(_write(tmp_path / "s.h5", emb, np.zeros(5, bool)))
    with pytest.raises(StoreMismatchError, match="catalog fingerprint"):
        check_store(store, FakeDataset(fp="zzz"))
    with pytest.raises(StoreMismatchError, match="item count 4"):
        check_store(store, FakeDataset(n=5))
    with pytest.raises(StoreMismatchError, match="attribute modality='text', expected 'image'"):
        check_store(store, FakeDataset(), {"modality": "image"})
    store.attrs["complete"] = False
    with pytest.raises(StoreMismatchError, match="incomplete"):
        check_store(store, FakeDataset())
    store.attrs["complete"] = True
    store.attrs["format_version"] = 1  # finished version-1 stores have the same layout
    check_store(store, FakeDataset())
    store.attrs["format_version"] = 3
    with pytest.raises(StoreMismatchError, match="format version 3, this recx reads 1 or 2"):
        check_store(store, FakeDataset())


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5" * 10)
    with pytest.raises(StoreError, match="bad.h5: not a readable HDF5 store"):
        open_store(bad)
    with pytest.raises(StoreError, match="nope.h5: no such store"):
        open_store(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(StoreError, match="other.h5: not a recx store"):
        open_store(tmp_path / "other.h5")


def test_refuses_to_overwrite_finished_store(tmp_path):
    emb = np.ones((3, 2), np.float32)
    emb[0] = 0
    present = np.array([False, True, True])
    path = _write(tmp_path / "s.h5", emb, present)
    with pytest.raises(StoreError, match="already exists; pass --force"):
        _write(path, emb * 2, present)
    _write(path, emb * 2, present, force=True)
    np.testing.assert_array_equal(open_store(path).embeddings, emb * 2)


def test_partial_store_resumes_and_mismatched_partial_restarts(tmp_path):
    path = tmp_path / "s.h5"
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2, planned=4)
    w.write_rows([3, 1], emb[[3, 1]])
    with pytest.raises(ValueError, match="2 of 4 planned items written"):
        w.finish()
    w.close()
    with pytest.raises(StoreError, match="did not finish"):
        open_store(path)
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2, planned=4)
    assert w.resumed_from == 2 == w.rows_done
    np.testing.assert_array_equal(w.f["present"][...], [False, True, False, True, False])
    w.close()
    for other in ({"attrs": {**ATTRS, "pooling": "cls"}}, {"planned": 3}, {"chunk_rows": 3}):
        kw = {"attrs": ATTRS, "planned": 4, "chunk_rows": 2} | other
        w = StoreWriter(path, 5, 2, dtype="float32", **kw)
        assert w.resumed_from == 0 and w.rows_done == 0, other
        w.close()
    partial_path(path).write_bytes(b"garbage")  # killed mid-write: start over
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2, planned=4)
    assert w.rows_done == 0
    with pytest.raises(ValueError, match="rows must be distinct and in 1..4"):
        w.write_rows([0, 2], emb[:2])  # row 0 is padding
    with pytest.raises(ValueError, match="rows must be distinct"):
        w.write_rows([2, 2], emb[:2])
    with pytest.raises(ValueError, match="rows must be distinct"):
        w.write_rows([5], emb[:1])
    w.write_rows([4, 2, 1], emb[[4, 2, 1]])
    with pytest.raises(ValueError, match="exceed the 4 planned"):
        w.write_rows([3, 4], emb[[3, 4]])
    w.write_rows([2], emb[[2]])  # again: rows_done reaches 4 with only 3 rows present
    with pytest.raises(ValueError, match="3 rows present, 4 planned"):
        w.finish()
    w.close()


def test_read_hidden_any_order(tmp_path):
    path = tmp_path / "h.h5"
    w = StoreWriter(path, 4, 2, ATTRS | {"cache_top_k": 1}, dtype="float32", chunk_rows=4, hidden_shape=(3, 2), planned=3)
    hidden = np.arange(24, dtype=np.float16).reshape(4, 3, 2)
    mask = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], bool)
    emb = np.arange(8, dtype=np.float32).reshape(4, 2)
    with pytest.raises(ValueError, match="hidden states missing"):
        w.write_rows([1], emb[[1]])
    w.write_rows([3, 1], emb[[3, 1]], hidden[[3, 1]], mask[[3, 1]])  # scattered, not increasing
    w.write_rows([2], emb[[2]], hidden[[2]], mask[[2]])
    w.finish()
    store = open_store(path)
    np.testing.assert_array_equal(store.present, [False, True, True, True])
    np.testing.assert_array_equal(store.embeddings, np.r_[[[0, 0]], emb[1:]])
    h, m = store.read_hidden(np.array([3, 1, 3, 0]))
    np.testing.assert_array_equal(h, np.r_[hidden[[3, 1, 3]], np.zeros((1, 3, 2))].astype(np.float32))
    np.testing.assert_array_equal(m, np.r_[mask[[3, 1, 3]], np.zeros((1, 3), bool)])


def test_hidden_chunks_follow_row_size(tmp_path):
    """About 64 KiB of hidden rows per HDF5 chunk: one row of a real model, up to 64 small ones."""
    for (t, h), rows in (((64, 384), 1), ((16, 32), 64), ((8, 1024), 4)):
        w = StoreWriter(tmp_path / f"h{t}.h5", 100, 2, ATTRS, hidden_shape=(t, h), planned=0)
        assert w.f["hidden"].chunks == (rows, t, h)
        w.close()
