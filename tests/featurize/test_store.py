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
    w = StoreWriter(path, len(emb), emb.shape[1], attrs, dtype=dtype, chunk_rows=chunk_rows, force=force)
    for start, stop in w.chunks():
        w.write_chunk(start, emb[start:stop], present[start:stop])
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
    assert store.attrs["complete"] is True and store.attrs["rows_done"] == 5
    assert store.attrs["format_version"] == 1 and store.attrs["dtype"] == "float32"
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
    path = _write(tmp_path / "s.h5", emb, np.ones(3, bool))
    with pytest.raises(StoreError, match="already exists; pass --force"):
        _write(path, emb * 2, np.ones(3, bool))
    _write(path, emb * 2, np.ones(3, bool), force=True)
    np.testing.assert_array_equal(open_store(path).embeddings, emb * 2)


def test_partial_store_resumes_and_mismatched_partial_restarts(tmp_path):
    path = tmp_path / "s.h5"
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2)
    w.write_chunk(0, emb[:2], np.ones(2, bool))
    w.close()
    with pytest.raises(StoreError, match="did not finish"):
        open_store(path)
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2)
    assert w.resumed_from == 2 and w.chunks() == [(2, 4), (4, 5)]
    w.close()
    w = StoreWriter(path, 5, 2, {**ATTRS, "pooling": "cls"}, dtype="float32", chunk_rows=2)
    assert w.resumed_from == 0 and w.rows_done == 0
    w.close()
    partial_path(path).write_bytes(b"garbage")  # killed mid-write: start over
    w = StoreWriter(path, 5, 2, ATTRS, dtype="float32", chunk_rows=2)
    assert w.rows_done == 0
    with pytest.raises(ValueError, match="expected 0"):
        w.write_chunk(2, emb[2:4], np.ones(2, bool))
    w.close()


def test_read_hidden_any_order(tmp_path):
    path = tmp_path / "h.h5"
    w = StoreWriter(path, 4, 2, ATTRS | {"cache_top_k": 1}, dtype="float32", chunk_rows=4, hidden_shape=(3, 2))
    hidden = np.arange(24, dtype=np.float16).reshape(4, 3, 2)
    mask = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], bool)
    w.write_chunk(0, np.zeros((4, 2), np.float32), np.ones(4, bool), hidden, mask)
    w.finish()
    store = open_store(path)
    h, m = store.read_hidden(np.array([3, 1, 3]))
    np.testing.assert_array_equal(h, hidden[[3, 1, 3]].astype(np.float32))
    np.testing.assert_array_equal(m, mask[[3, 1, 3]])
