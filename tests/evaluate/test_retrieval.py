"""Exact top-K (FAISS flat == matmul == brute force), ranks, approximate indexes, recall."""

import numpy as np
import pytest

from recx.evaluate import retrieval as R

faiss = pytest.importorskip("faiss")


def brute_topk(user_vectors, table, k, exclude=None):
    s = user_vectors.astype(np.float64) @ table.T.astype(np.float64)
    out = []
    for u in range(len(user_vectors)):
        ex = set(exclude[u].tolist()) if exclude is not None else set()
        cand = sorted((j for j in range(1, len(table)) if j not in ex), key=lambda j: (-s[u, j], j))[:k]
        out.append(cand + [0] * (k - len(cand)))
    return np.array(out, dtype=np.int64)


def integer_case(seed, n, users, d=4):
    """Small-integer vectors: scores are exact in float32 (so every backend agrees) and tie a lot."""
    rng = np.random.default_rng(seed)
    table = rng.integers(-2, 3, size=(n + 1, d)).astype(np.float32)
    uv = rng.integers(-2, 3, size=(users, d)).astype(np.float32)
    excl = [rng.choice(np.arange(1, n + 1), size=int(rng.integers(0, n + 1)), replace=False) for _ in range(users)]
    return uv, table, excl


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("use_exclusion", [False, True])
def test_faiss_and_matmul_equal_brute_force_with_ties(seed, use_exclusion):
    rng = np.random.default_rng(100 + seed)
    n, users, k = int(rng.integers(3, 40)), int(rng.integers(1, 25)), int(rng.integers(1, 12))
    uv, table, excl = integer_case(seed, n, users)
    ex = excl if use_exclusion else None
    ref = brute_topk(uv, table, k, ex)
    a = R.topk_matmul(uv, table, k, ex, rows_per_block=3)
    b = R.topk_faiss(uv, table, k, ex, device="cpu")
    np.testing.assert_array_equal(a.items, ref)
    np.testing.assert_array_equal(b.items, ref)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert (a.items[~np.isfinite(a.scores)] == 0).all()


def test_faiss_equals_matmul_on_float_embeddings():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((2001, 16)).astype(np.float32)
    uv = rng.standard_normal((300, 16)).astype(np.float32)
    hist = [rng.integers(1, 2001, size=rng.integers(0, 40)) for _ in range(300)]
    for ex in (None, hist):
        a = R.topk_exact(uv, table, 20, ex, backend="torch", device="cpu")
        b = R.topk_exact(uv, table, 20, ex, backend="faiss", device="cpu")
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    # excluded items never appear, and the list is still full
    a = R.topk_exact(uv, table, 20, hist, backend="faiss", device="cpu")
    for u in range(300):
        assert not set(a.items[u]) & set(hist[u].tolist())
        assert (a.items[u] > 0).all()


def test_padding_row_never_returned():
    table = np.array([[100.0, 100.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # row 0 would win
    uv = np.array([[1.0, 2.0]], dtype=np.float32)
    for backend in ("torch", "faiss"):
        top = R.topk_exact(uv, table, 3, backend=backend, device="cpu")
        assert top.items.tolist() == [[2, 1, 0]]
        assert top.scores[0, :2].tolist() == [2.0, 1.0] and top.scores[0, 2] == -np.inf


def test_ranks_matmul_hand_made():
    table = np.array([[0, 0], [3, 0], [2, 0], [2, 0], [1, 0]], dtype=np.float32)
    uv = np.array([[1, 0], [1, 0]], dtype=np.float32)
    targets = np.array([2, 4])
    assert R.ranks_matmul(uv, table, targets).tolist() == [3.0, 4.0]
    assert R.ranks_matmul(uv, table, targets, ties="expected").tolist() == [2.5, 4.0]
    excl = [np.array([1, 2]), np.array([4, 3])]  # the target in an exclusion list is ignored by callers' lists
    assert R.ranks_matmul(uv, table, targets, [np.array([1]), np.array([3])], rows_per_block=1).tolist() == [2.0, 3.0]
    assert R.exclusion_lists(excl, targets)[0].tolist() == [1]


@pytest.mark.parametrize("ties", ["pessimistic", "expected"])
def test_ranks_matmul_equals_ranking_each_user_alone_for_any_block(ties):
    """Blocks of users share one score buffer; the ranks do not depend on the block size, and a
    user ranked alone gets the same rank (ties made on purpose: small integer vectors)."""
    rng = np.random.default_rng(3)
    table = rng.integers(-2, 3, size=(301, 4)).astype(np.float32)
    uv = rng.integers(-2, 3, size=(150, 4)).astype(np.float32)
    targets = rng.integers(1, 301, size=150)
    excl = [rng.integers(1, 301, size=rng.integers(0, 6)) for _ in range(150)]
    want = np.array([R.ranks_matmul(uv[u : u + 1], table, targets[u : u + 1], [excl[u]], ties)[0] for u in range(150)])
    for rows in (None, 1, 16, 64, 150):
        np.testing.assert_array_equal(R.ranks_matmul(uv, table, targets, excl, ties, rows_per_block=rows), want)
    # small catalogs: a cache-sized block; larger ones: up to 256 users within 256 MB
    assert R._rows_per_block(4_386, 10**6) == 448 and R._rows_per_block(4_386, 100) == 100
    assert R._rows_per_block(50_001, 10**6) == 256
    assert R._rows_per_block(1_000_001, 10**6) == 64 and R._rows_per_block(10_000_001, 10**6) == 6


def test_exclusion_lists_drop_target_padding_and_duplicates():
    out = R.exclusion_lists([np.array([5, 0, 3, 5, 7]), np.array([2])], np.array([7, 9]))
    assert [x.tolist() for x in out] == [[3, 5], [2]]


def test_input_errors():
    with pytest.raises(R.RetrievalError, match="dimension"):
        R.topk_exact(np.zeros((2, 3)), np.zeros((5, 4)), 2)
    with pytest.raises(R.RetrievalError, match="1..4"):
        R.ranks_matmul(np.zeros((1, 4)), np.zeros((5, 4)), np.array([5]))
    with pytest.raises(R.RetrievalError, match="NaN"):
        R.topk_exact(np.full((1, 4), np.nan), np.zeros((5, 4)), 2)
    with pytest.raises(R.RetrievalError, match="unknown index"):
        R.build_index(np.zeros((5, 4), np.float32), "lsh")  # type: ignore[arg-type]


def test_recall_vs_exact_hand_made():
    exact = R.TopK(np.array([[1, 2, 3], [4, 5, 0]]), np.zeros((2, 3), np.float32))
    approx = R.TopK(np.array([[3, 9, 1], [6, 7, 8]]), np.zeros((2, 3), np.float32))
    np.testing.assert_allclose(R.recall_vs_exact(approx, exact), [2 / 3, 0.0])


def clustered(seed=0, n=3000, d=16, users=200):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, d)) * 3
    items = centers[rng.integers(0, 30, n)] + rng.standard_normal((n, d))
    table = np.vstack([np.zeros((1, d)), items]).astype(np.float32)
    uv = rng.standard_normal((users, d)).astype(np.float32)
    return uv, table


def test_ivf_full_probe_is_exact_and_partial_probe_recall_is_measured():
    uv, table = clustered()
    exact = R.topk_exact(uv, table, 10, backend="faiss", device="cpu")
    full = R.build_index(table, "ivf", nlist=20, nprobe=20, device="cpu")
    np.testing.assert_array_equal(R.recall_vs_exact(R.topk_approx(uv, table, 10, full), exact), np.ones(len(uv)))
    one = R.build_index(table, "ivf", nlist=20, nprobe=1, device="cpu")
    approx = R.topk_approx(uv, table, 10, one)
    rec = R.recall_vs_exact(approx, exact)
    manual = np.mean([len(set(approx.items[u]) & set(exact.items[u])) / 10 for u in range(len(uv))])
    assert rec.mean() == pytest.approx(manual)
    assert rec.mean() < 1.0  # one probed list out of 20 misses some true neighbours here
    assert one.params == {"nlist": 20, "nprobe": 1}


def test_hnsw_respects_exclusion_and_reports_params():
    uv, table = clustered(1, n=500, users=50)
    hist = [np.arange(1, 30) for _ in range(50)]
    idx = R.build_index(table, "hnsw", hnsw_m=8, ef_construction=40, ef_search=64, device="cpu")
    top = R.topk_approx(uv, table, 10, idx, hist)
    assert not np.isin(top.items, np.arange(1, 30)).any()
    assert (top.items > 0).all()
    assert idx.params == {"M": 8, "efConstruction": 40, "efSearch": 64}


def test_device_resolution_without_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert R.resolve_device("auto") == "cpu"
    with pytest.raises(R.RetrievalError, match="no CUDA"):
        R.resolve_device("cuda")


def test_gpu_faiss_wiring_without_a_gpu(monkeypatch):
    """With a GPU-capable faiss (faked here), flat and IVF indexes move to the GPU under
    device auto/cuda and stay on CPU under cpu; HNSW (no GPU version) always stays."""
    moved = []

    class FakeResources:
        pass

    def fake_to_gpu(res, dev, index):
        moved.append(type(index).__name__)
        return index

    monkeypatch.setattr(faiss, "StandardGpuResources", FakeResources, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", fake_to_gpu, raising=False)
    monkeypatch.setattr(R, "faiss_gpu_available", lambda: True)
    table = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    assert R.build_index(table, "flat", device="auto").on_gpu
    assert R.build_index(table, "ivf", nlist=4, device="cuda").on_gpu
    assert not R.build_index(table, "flat", device="cpu").on_gpu
    assert not R.build_index(table, "hnsw", hnsw_m=4, device="auto").on_gpu
    assert moved == ["IndexFlatIP", "IndexIVFFlat"]
    monkeypatch.setattr(R, "faiss_gpu_available", lambda: False)
    with pytest.raises(R.RetrievalError, match="no GPU support"):
        R.build_index(table, "flat", device="cuda")
    assert not R.build_index(table, "flat", device="auto").on_gpu
