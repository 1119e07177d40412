import numpy as np
import pytest
import torch

from recx.featurize.base import Encoder
from recx.featurize.registry import load_encoder
from recx.featurize.runner import choose_compute_dtype, plan_chunks, run
from recx.featurize.store import StoreError, check_store, open_store, partial_path


def _encode_direct(folder, texts):
    enc = load_encoder(str(folder))
    with torch.inference_mode():
        return enc(enc.preprocess(texts)).numpy()


def test_run_tiny_bert_rows_present_and_values(tiny_bert, dataset_factory, texts_factory, tmp_path):
    texts = texts_factory(23)
    ds = dataset_factory(texts)
    out = run(ds.path, model=str(tiny_bert), out=tmp_path / "s.h5", batch_size=4, chunk_rows=8, dtype="float32", progress=False)
    store = open_store(out)
    check_store(store, ds, {"modality": "text", "pooling": "mean", "encoder": tiny_bert.name, "compute_dtype": "float32"})
    want_present = np.array([False] + [t is not None for t in texts])
    np.testing.assert_array_equal(store.present, want_present)
    assert not store.embeddings[~want_present].any()
    rows = np.flatnonzero(want_present)
    direct = _encode_direct(tiny_bert, [texts[r - 1] for r in rows])
    np.testing.assert_allclose(store.embeddings[rows], direct, atol=1e-5)
    assert store.attrs["rows_done"] == len(rows) == store.attrs["rows_planned"] and store.attrs["batch_size"] == 4


def test_interrupted_then_resumed_equals_uninterrupted(tiny_bert, dataset_factory, texts_factory, tmp_path):
    ds = dataset_factory(texts_factory(41, seed=3))  # 30 present texts
    # 2 batches of 3 per work chunk: chunks end at plan positions 6, 12, 18, 24, 30
    kw = dict(model=str(tiny_bert), batch_size=3, chunk_rows=8, cache_top_k=1, max_length=16, progress=False)
    full = run(ds.path, out=tmp_path / "full.h5", **kw)

    class Killed(Exception):
        pass

    def die_after_second_chunk(rows_done):
        if rows_done == 12:
            raise Killed

    target = tmp_path / "resumed.h5"
    with pytest.raises(Killed):
        run(ds.path, out=target, on_chunk=die_after_second_chunk, **kw)
    assert not target.exists() and partial_path(target).exists()
    seen = []
    run(ds.path, out=target, on_chunk=seen.append, **kw)
    assert seen == [18, 24, 30]  # resumed after 12 items: the first two chunks were not redone
    a, b = open_store(full), open_store(target)
    assert a.embeddings.tobytes() == b.embeddings.tobytes()
    np.testing.assert_array_equal(a.present, b.present)
    import h5py

    with h5py.File(full) as fa, h5py.File(target) as fb:
        for name in ("embeddings", "present", "hidden", "hidden_mask"):  # float16 bytes on disk
            assert fa[name][...].tobytes() == fb[name][...].tobytes(), name


def test_refuses_finished_store_and_no_resume_restarts(tiny_bert, dataset_factory, texts_factory, tmp_path):
    ds = dataset_factory(texts_factory(9))
    out = run(ds.path, model=str(tiny_bert), out=tmp_path / "s.h5", progress=False)
    with pytest.raises(StoreError, match="already exists; pass --force"):
        run(ds.path, model=str(tiny_bert), out=out, progress=False)
    assert run(ds.path, model=str(tiny_bert), out=out, progress=False, force=True, resume=False) == out


def test_store_of_another_dataset_is_refused(tiny_bert, dataset_factory, texts_factory, tmp_path):
    from recx.featurize.store import StoreMismatchError

    ds = dataset_factory(texts_factory(9))
    other = dataset_factory(texts_factory(9, seed=5), name="other")
    store = open_store(run(ds.path, model=str(tiny_bert), out=tmp_path / "s.h5", progress=False))
    with pytest.raises(StoreMismatchError, match="catalog fingerprint"):
        check_store(store, other)


class _Flaky(Encoder):
    """Returns fixed vectors in float32 and noise under autocast."""

    modality = "text"
    dim = 4

    def __init__(self):
        super().__init__("flaky", "test", [], "mean")

    def preprocess(self, raw_items):
        return {"x": torch.arange(len(raw_items), dtype=torch.float32)}

    def forward(self, batch):
        base = torch.ones(len(batch["x"]), 4)
        if torch.is_autocast_enabled("cpu"):
            return torch.randn(len(batch["x"]), 4)
        return base


def test_reduced_precision_only_when_cosine_holds(monkeypatch):
    batch = _Flaky().preprocess(["a", "b", "c"])
    dev = torch.device("cpu")
    torch.manual_seed(0)
    assert choose_compute_dtype(_Flaky(), batch, dev, "bfloat16") == ("float32", 1.0)
    monkeypatch.setattr("recx.device.cpu_has_fast_bf16", lambda: False)
    assert choose_compute_dtype(_Flaky(), batch, dev, "auto") == ("float32", 1.0)
    assert choose_compute_dtype(_Flaky(), batch, dev, "float32") == ("float32", 1.0)


class _Linear(Encoder):
    modality = "text"
    dim = 8

    def __init__(self):
        super().__init__("linear", "test", [], "mean")
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(16, 8)

    def preprocess(self, raw_items):
        return {"x": torch.randn(len(raw_items), 16, generator=torch.Generator().manual_seed(1))}

    def forward(self, batch):
        return self.lin(batch["x"]).float()


def test_reduced_precision_kept_when_close():
    enc = _Linear()
    dtype, worst = choose_compute_dtype(enc, enc.preprocess(list("abcd")), torch.device("cpu"), "bfloat16")
    assert dtype == "bfloat16" and 0.999 < worst <= 1.0


class _Lengths(Encoder):
    """Cost = text length (``sort_keys``), or no sort keys at all."""

    modality = "text"
    dim = 2

    def __init__(self, sort: bool = True):
        super().__init__("lengths", "test", [], "mean")
        self.sort = sort

    def sort_keys(self, raw_items):
        return [len(t) for t in raw_items] if self.sort else None


def _inputs(texts):
    raw = [None] + list(texts)
    present = np.array([t is not None for t in raw])
    return raw, present


def test_plan_is_globally_sorted_and_covers_present_rows_once():
    rng = np.random.default_rng(0)
    texts = [None if k % 5 == 2 else "x" * int(rng.integers(1, 30)) for k in range(57)]
    raw, present = _inputs(texts)
    chunks = plan_chunks(_Lengths(), raw, present, batch_size=4, chunk_rows=10)
    order = np.concatenate([c.rows for c in chunks])
    keys = [(len(raw[r]), r) for r in order]
    assert keys == sorted(keys)  # (cost, row) over the whole catalog, not per chunk
    assert sorted(order.tolist()) == np.flatnonzero(present).tolist()  # every present row once, absent ones never
    assert [len(c.batches) for c in chunks] == [2] * 6  # 46 items: 12 batches of 4 (the last of 2), 2 per chunk
    assert [len(b) for c in chunks for b in c.batches] == [4] * 11 + [2]
    assert [(c.start, c.stop) for c in chunks] == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40), (40, 46)]
    # no sort keys: row order; a chunk_rows below one batch still gives one batch per chunk
    chunks = plan_chunks(_Lengths(sort=False), raw, present, batch_size=4, chunk_rows=3)
    assert np.concatenate([c.rows for c in chunks]).tolist() == np.flatnonzero(present).tolist()
    assert all(len(c.batches) == 1 for c in chunks)
    assert plan_chunks(_Lengths(), [None, None], np.array([False, False]), batch_size=4, chunk_rows=8) == []


def test_batches_are_cut_from_the_global_sort():
    """Long and short texts alternating in row order, chunks smaller than the catalog: the global
    sort gives batches of one length each, sorting inside row chunks (the old plan) does not."""
    texts = ["x" * (40 if k % 2 else 2) for k in range(32)]
    raw, present = _inputs(texts)
    chunks = plan_chunks(_Lengths(), raw, present, batch_size=4, chunk_rows=6)
    batches = [b for c in chunks for b in c.batches]
    assert all(len({len(raw[r]) for r in b}) == 1 for b in batches)

    def padded(batches):
        return sum(len(b) * max(len(raw[r]) for r in b) for b in batches)

    assert padded(batches) == sum(len(t) for t in texts)  # no padding at all
    assert [len(c.batches) for c in chunks] == [1] * 8  # 6 // 4: one batch per chunk, still resumable
    per_row_chunk = []  # the old plan: rows 0-5, 6-11 ... each sorted on its own, then batched
    for start in range(0, len(raw), 6):
        rows = sorted((len(raw[r]), r) for r in range(start, min(start + 6, len(raw))) if present[r])
        per_row_chunk += [[r for _, r in rows[i : i + 4]] for i in range(0, len(rows), 4)]
    assert padded(per_row_chunk) > 1.3 * padded(batches)
