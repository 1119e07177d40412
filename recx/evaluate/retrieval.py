"""Exact and approximate full-catalog retrieval over an item table.

Conventions shared by every function here:

- ``item_table`` is [N+1, D] float32; row 0 is padding and is never retrieved or ranked.
  Scores are inner products ``user_vectors @ item_table.T``.
- Returned item indices are 1..N; a slot that cannot be filled (the user excluded almost the
  whole catalog) holds index 0 with score ``-inf``.
- Exact top-K lists are canonical: sorted by score descending, ties broken by the smaller
  item index, including ties that straddle position K.  FAISS and the matmul path therefore
  return identical lists whenever they compute identical scores.
- ``exclude`` is a per-user list of item indices removed from the ranking (e.g. the user's
  history); callers decide whether the target may be excluded (the protocol never does).
- ``history`` (:class:`HistoryScores`) adds a per-user score to a few items each (a model's
  repeat-aware term for the user's own items): the score of item j for user u is
  ``<u, v_j> + bonus(u, j)`` on every path here, exact (matmul) and FAISS alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch

from recx.errors import RecxError
from recx.evaluate.metrics import TieRule, target_ranks_indexed

Backend = Literal["auto", "faiss", "torch"]
IndexKind = Literal["flat", "ivf", "hnsw"]
Device = Literal["auto", "cpu", "cuda"]

# Elements of one [B, N+1] score block: 8 MB of float32, a block that stays in cache, which is
# ranked ~3x faster than one that does not (4,386 items, 8,442 users, one thread: 0.08 s at
# 128-512 users a block, 0.28 s at all of them).  Larger catalogs take up to 256 users a block
# within 256 MB instead: fewer users slow the matmul, which reads the whole table per block, and
# top-k (50k items: 1.79 s at 64 users a block, 1.52 s at 256).
_CACHE_BLOCK_ELEMENTS = 1 << 21
_MAX_BLOCK_ELEMENTS = 1 << 26


class RetrievalError(RecxError, ValueError):
    """Inconsistent embeddings or retrieval options; the message says which."""


@dataclass
class TopK:
    """Top-K lists: ``items`` [U, K] int64 in 1..N (0 = unfilled), ``scores`` [U, K] float32."""

    items: np.ndarray
    scores: np.ndarray


@dataclass
class ApproxIndex:
    """A built approximate index and what it cost to build."""

    kind: IndexKind
    index: object  # faiss.Index
    params: dict[str, int] = field(default_factory=dict)
    build_seconds: float = 0.0
    on_gpu: bool = False


@dataclass
class HistoryScores:
    """Per-user additions to a few items' scores.

    items [U, H] int64: item indices, each at most once per row, 0 = unused slot;
    values [U, H] float32: what each item's score gains (0 in unused slots).
    """

    items: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        self.items = np.ascontiguousarray(self.items, dtype=np.int64)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.items.shape != self.values.shape or self.items.ndim != 2:
            raise RetrievalError(f"history scores: items {self.items.shape} and values {self.values.shape} must both be [U, H]")

    def rows(self, lo: int, hi: int) -> "HistoryScores":
        return HistoryScores(self.items[lo:hi], self.values[lo:hi])

    def take(self, rows: np.ndarray) -> "HistoryScores":
        return HistoryScores(self.items[rows], self.values[rows])

    @staticmethod
    def combine(parts: Sequence["HistoryScores"], factors: Sequence[float]) -> "HistoryScores":
        """sum_m factors[m] * parts[m], with each item once per row (an ensemble's term)."""
        items = np.concatenate([p.items for p in parts], axis=1)
        values = np.concatenate([f * p.values for p, f in zip(parts, factors)], axis=1).astype(np.float32)
        n_rows, width = items.shape
        order = np.argsort(items, axis=1, kind="stable")
        items, values = np.take_along_axis(items, order, 1), np.take_along_axis(values, order, 1)
        first = np.ones_like(items, dtype=bool)
        first[:, 1:] = items[:, 1:] != items[:, :-1]
        group = np.cumsum(first, axis=1) - 1  # [U, H]: the slot of each item's first occurrence
        out_items = np.zeros((n_rows, width), np.int64)
        out_values = np.zeros((n_rows, width), np.float32)
        rows = np.broadcast_to(np.arange(n_rows)[:, None], items.shape)
        out_items[rows[first], group[first]] = items[first]
        np.add.at(out_values, (rows, group), values)
        out_values[out_items == 0] = 0.0
        return HistoryScores(out_items, out_values)

    def add_to(self, scores: torch.Tensor, lo: int = 0) -> torch.Tensor:
        """Add rows ``lo:lo+B`` of the term to scores [B, N+1] in place (column 0 is padding)."""
        b = scores.shape[0]
        items = torch.from_numpy(self.items[lo : lo + b]).to(scores.device)
        values = torch.from_numpy(self.values[lo : lo + b]).to(scores.device, scores.dtype)
        return scores.scatter_add_(1, items, values)

    def dot(self, user_vectors: np.ndarray, item_table: np.ndarray) -> np.ndarray:
        """[U, H] full scores <u, v_j> + bonus of the listed items (-inf in unused slots)."""
        s = np.einsum("ud,uhd->uh", user_vectors, item_table[self.items]) + self.values
        return np.where(self.items > 0, s, -np.inf).astype(np.float32)


def check_history(history: HistoryScores | None, n_users: int) -> None:
    if history is not None and len(history.items) != n_users:
        raise RetrievalError(f"history scores for {len(history.items)} users, but {n_users} user vectors")


# -- helpers -----------------------------------------------------------------------------------
def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def faiss_gpu_available() -> bool:
    """True when the installed faiss has GPU support and sees at least one GPU."""
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RetrievalError("--device cuda: torch sees no CUDA device; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise RetrievalError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return device


def check_embeddings(user_vectors: np.ndarray, item_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and values; return C-contiguous float32 copies-or-views."""
    u = np.ascontiguousarray(user_vectors, dtype=np.float32)
    t = np.ascontiguousarray(item_table, dtype=np.float32)
    if u.ndim != 2 or t.ndim != 2:
        raise RetrievalError(f"user_vectors must be [U, D] and item_table [N+1, D]; got {u.shape} and {t.shape}")
    if u.shape[1] != t.shape[1]:
        raise RetrievalError(f"user vectors have dimension {u.shape[1]} but item vectors {t.shape[1]}")
    if t.shape[0] < 2:
        raise RetrievalError(f"item_table has {t.shape[0]} rows; it needs the padding row 0 and at least one item")
    bad_users, bad_items = int((~np.isfinite(u)).any(1).sum()), int((~np.isfinite(t[1:])).any(1).sum())
    if bad_users or bad_items:
        raise RetrievalError(f"{bad_users} of {len(u)} user vectors and {bad_items} of {len(t) - 1} item vectors contain NaN "
                             "or infinity: the model diverged; train again with a lower --lr, --grad-clip 1 or --amp off")
    return u, t


def pad_lists(lists: Sequence[np.ndarray] | None, n_users: int) -> np.ndarray:
    """Ragged per-user index lists -> [U, L] int64 padded with 0 (L >= 1)."""
    if lists is None:
        return np.zeros((n_users, 1), dtype=np.int64)
    if len(lists) != n_users:
        raise RetrievalError(f"{len(lists)} exclusion lists for {n_users} users")
    width = max(1, max((len(x) for x in lists), default=0))
    out = np.zeros((n_users, width), dtype=np.int64)
    for u, x in enumerate(lists):
        out[u, : len(x)] = x
    return out


def exclusion_lists(histories: Sequence[np.ndarray], targets: np.ndarray) -> list[np.ndarray]:
    """Each user's distinct history items minus the target (the target is never excluded)."""
    out = []
    for h, t in zip(histories, targets):
        h = np.unique(np.asarray(h, dtype=np.int64))
        out.append(h[(h != t) & (h != 0)])
    return out


def _rows_per_block(n_cols: int, n_users: int) -> int:
    n_cols = max(1, n_cols)
    rows = _CACHE_BLOCK_ELEMENTS // n_cols
    if rows < 256:
        rows = max(1, min(256, _MAX_BLOCK_ELEMENTS // n_cols))
    # a multiple of 64 users (or 16): the BLAS kernel runs the [N+1, B] product ~2x slower at
    # B = 67 than at 64 (1M x 64 table, one thread)
    align = 64 if rows >= 64 else 16 if rows >= 16 else 1
    return min(n_users, rows - rows % align)


def _canonical(items: np.ndarray, scores: np.ndarray, k: int) -> TopK:
    """Sort candidates by (score desc, index asc), keep the first k (padding with index 0 /
    score -inf when there are fewer candidates), blank out -inf slots."""
    if items.shape[1] < k:
        pad = ((0, 0), (0, k - items.shape[1]))
        items = np.pad(items, pad)
        scores = np.pad(scores.astype(np.float32), pad, constant_values=-np.inf)
    order = np.lexsort((items, -scores.astype(np.float64)), axis=-1)[:, :k]
    it = np.take_along_axis(items, order, 1).astype(np.int64)
    sc = np.take_along_axis(scores, order, 1).astype(np.float32)
    it[~np.isfinite(sc)] = 0
    return TopK(items=it, scores=sc)


# -- exact: matmul ----------------------------------------------------------------------------
def _block_scores(u: torch.Tensor, table: torch.Tensor, excl: torch.Tensor | None, history: HistoryScores | None = None,
                  lo: int = 0) -> torch.Tensor:
    """[B, N+1] scores (plus rows ``lo:lo+B`` of ``history``) with column 0 and excluded items at -inf."""
    s = u @ table.T
    if history is not None:
        history.add_to(s, lo)
    s[:, 0] = -torch.inf
    if excl is not None:
        s.scatter_(1, excl, -torch.inf)  # padded slots hold 0, i.e. column 0, already -inf
    return s


def _topk_from_scores(s: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-k item indices and scores of [B, N+1] scores (column 0 at -inf)."""
    n_cols = s.shape[1]
    kk = min(k + 1, n_cols)
    vals, idx = torch.topk(s, kk, dim=1, sorted=True)
    vals_np, idx_np = vals.cpu().numpy(), idx.cpu().numpy()
    if kk <= k:  # the whole catalog fits: nothing straddles position k
        return idx_np, vals_np
    ambiguous = vals[:, k - 1] == vals[:, k]
    if not bool(ambiguous.any()):
        return idx_np[:, :k], vals_np[:, :k]
    # Ties straddle position k: keep everything strictly above the k-th value, then fill the
    # remaining slots with the smallest indices tied at it.
    rows = ambiguous.nonzero().flatten()
    sub = s[rows]
    kth = vals[rows, k - 1 : k]
    above = sub > kth
    tied = sub == kth
    need = k - above.sum(1, keepdim=True)
    take = above | (tied & (tied.cumsum(1) <= need))
    sel = take.nonzero()[:, 1].view(len(rows), k)
    r = rows.cpu().numpy()
    idx_out, vals_out = idx_np[:, :k].copy(), vals_np[:, :k].copy()
    idx_out[r] = sel.cpu().numpy()
    vals_out[r] = sub.gather(1, sel).cpu().numpy()
    return idx_out, vals_out


def topk_matmul(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray] | None = None,
    device: str = "cpu",
    rows_per_block: int | None = None,
    history: HistoryScores | None = None,
) -> TopK:
    """Exact canonical top-k by chunked torch matmul with masked scoring.

    Args:
        user_vectors: [U, D]; item_table: [N+1, D]; exclude: per user, item indices to drop;
        history: per-user score additions (module doc).
    Returns:
        TopK with [U, k] arrays.
    """
    u_np, t_np = check_embeddings(user_vectors, item_table)
    check_history(history, len(u_np))
    dev = resolve_device(device)
    table = torch.from_numpy(t_np).to(dev)
    padded = pad_lists(exclude, len(u_np)) if exclude is not None else None
    rows = rows_per_block or _rows_per_block(t_np.shape[0], len(u_np))
    items, scores = [], []
    with torch.inference_mode():
        for lo in range(0, len(u_np), rows):
            u = torch.from_numpy(u_np[lo : lo + rows]).to(dev)
            excl = torch.from_numpy(padded[lo : lo + rows]).to(dev) if padded is not None else None
            idx, vals = _topk_from_scores(_block_scores(u, table, excl, history, lo), k)
            items.append(idx)
            scores.append(vals)
    return _canonical(np.concatenate(items), np.concatenate(scores), k)


def ranks_matmul(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    targets: np.ndarray,
    exclude: Sequence[np.ndarray] | None = None,
    ties: TieRule = "pessimistic",
    device: str = "cpu",
    rows_per_block: int | None = None,
    history: HistoryScores | None = None,
) -> np.ndarray:
    """Exact 1-based full-catalog rank of each target: [U] float64 (see metrics.target_ranks);
    ``history`` adds each user's history scores first."""
    u_np, t_np = check_embeddings(user_vectors, item_table)
    check_history(history, len(u_np))
    tg = np.asarray(targets, dtype=np.int64)
    n = t_np.shape[0] - 1
    if tg.shape != (len(u_np),):
        raise RetrievalError(f"{tg.shape[0] if tg.ndim else 0} targets for {len(u_np)} user vectors")
    if tg.size and (tg.min() < 1 or tg.max() > n):
        raise RetrievalError(f"targets must be item indices in 1..{n}; got range {tg.min()}..{tg.max()}")
    dev = resolve_device(device)
    table = torch.from_numpy(t_np).to(dev)
    padded = pad_lists([np.unique(x) for x in exclude], len(u_np)) if exclude is not None else None
    rows = rows_per_block or _rows_per_block(t_np.shape[0], len(u_np))
    out = []
    n_cols = t_np.shape[0]
    with torch.inference_mode():
        buffer = torch.empty(min(rows, len(u_np)) * n_cols, device=dev)  # one block's scores, reused
        for lo in range(0, len(u_np), rows):
            u = torch.from_numpy(u_np[lo : lo + rows]).to(dev)
            # items x users: the tall product runs ~2x faster than users x items on a CPU BLAS
            # (1M x 64 table, one thread), and the [B, N+1] view below is the same numbers
            s = torch.mm(table, u.T, out=buffer[: n_cols * len(u)].view(n_cols, len(u))).T
            if history is not None:
                history.add_to(s, lo)
            excl = torch.from_numpy(padded[lo : lo + rows]).to(dev) if padded is not None else None
            out.append(target_ranks_indexed(s, torch.from_numpy(tg[lo : lo + rows]).to(dev), excl, ties).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)


# -- exact and approximate: FAISS -------------------------------------------------------------
def _faiss():
    try:
        import faiss
    except ImportError:
        raise RetrievalError("faiss is not installed: pip install 'recx[cpu]' (faiss-cpu), or use backend='torch'") from None
    return faiss


_GPU_RESOURCES: list[object] = []


def _maybe_gpu(index, device: str):
    """Move a FAISS index to GPU 0 when asked (or 'auto') and possible; returns (index, on_gpu)."""
    if device == "cpu" or not faiss_gpu_available():
        if device == "cuda" and not faiss_gpu_available():
            raise RetrievalError("--device cuda: the installed faiss has no GPU support or sees no GPU")
        return index, False
    faiss = _faiss()
    res = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(res, 0, index)
    _GPU_RESOURCES.append(res)  # must outlive every index placed with it
    return gpu_index, True


def check_index_kind(kind: str) -> None:
    if kind not in ("flat", "ivf", "hnsw"):
        raise RetrievalError(f"--index must be flat, ivf or hnsw; got {kind!r}")


def index_params(kind: str, nlist: int | None, nprobe: int, hnsw_m: int, ef_construction: int, ef_search: int) -> dict[str, int]:
    """The :func:`build_index` parameters that apply to ``kind`` (from the commands' --nlist,
    --nprobe, --hnsw-m, --ef-construction, --ef-search)."""
    check_index_kind(kind)
    if kind == "ivf":
        return {"nprobe": nprobe, **({"nlist": nlist} if nlist else {})}
    if kind == "hnsw":
        return {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search}
    return {}


def build_index(
    item_table: np.ndarray,
    kind: IndexKind = "flat",
    nlist: int | None = None,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    device: str = "auto",
    seed: int = 0,
) -> ApproxIndex:
    """A FAISS inner-product index over rows 1..N of ``item_table`` (FAISS id j = item j+1).

    ``nlist`` defaults to ~4*sqrt(N) (capped so every list gets >= 39 training points, as
    FAISS requires for clustering quality).
    """
    faiss = _faiss()
    items = np.ascontiguousarray(item_table[1:], dtype=np.float32)
    n, d = items.shape
    t0 = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        params: dict[str, int] = {}
    elif kind == "ivf":
        nl = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        if nl > n:
            raise RetrievalError(f"--nlist {nl} exceeds the catalog size {n}")
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nl, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(items)
        index.nprobe = min(nprobe, nl)
        params = {"nlist": nl, "nprobe": int(index.nprobe)}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        params = {"M": hnsw_m, "efConstruction": ef_construction, "efSearch": ef_search}
    else:
        raise RetrievalError(f"unknown index {kind!r}; expected flat, ivf or hnsw")
    index.add(items)
    on_gpu = False
    if kind != "hnsw":  # FAISS has no GPU HNSW
        index, on_gpu = _maybe_gpu(index, device)
        if on_gpu and kind == "ivf":
            index.nprobe = params["nprobe"]
    return ApproxIndex(kind=kind, index=index, params=params, build_seconds=time.perf_counter() - t0, on_gpu=on_gpu)


def _drop_listed(dist: np.ndarray, ids: np.ndarray, listed: np.ndarray, n_items: int) -> None:
    """Set dist [B, K] to -inf in place where ids [B, K] is one of its row's ``listed`` [B, L]
    item indices (0 = unused slot)."""
    rows = np.arange(len(ids), dtype=np.int64)[:, None]
    dist[np.isin(rows * (n_items + 1) + ids, (rows * (n_items + 1) + listed)[listed > 0])] = -np.inf


def _search(
    index: ApproxIndex,
    user_vectors: np.ndarray,
    k: int,
    n_items: int,
    exclude: Sequence[np.ndarray] | None = None,
    batch_size: int = 4096,
    history: HistoryScores | None = None,
    item_table: np.ndarray | None = None,
) -> TopK:
    """Top-(k+1) from a FAISS index, sorted by (score desc, index asc), over-fetching by each
    batch's longest exclusion list so that filtering the excluded items never leaves fewer
    results than the catalog allows.  [U, k+1] (unfilled slots: index 0, score -inf).

    With ``history`` (and ``item_table``), each user's history items are scored exactly
    (<u, v_j> + bonus) and merged with the index's results, which are over-fetched by the
    number of history items, so moving those items up or down loses no other result."""
    u_np = np.ascontiguousarray(user_vectors, dtype=np.float32)
    padded = pad_lists(exclude, len(u_np)) if exclude is not None else None
    width = k + 1
    items_out, scores_out = [], []
    for lo in range(0, len(u_np), batch_size):
        u = u_np[lo : lo + batch_size]
        extra = int((padded[lo : lo + batch_size] > 0).sum(1).max()) if padded is not None else 0
        hist = history.rows(lo, lo + batch_size) if history is not None else None
        extra += int((hist.items > 0).sum(1).max()) if hist is not None and hist.items.size else 0
        kf = min(n_items, width + extra)
        dist, ids = index.index.search(u, kf)
        ids = ids.astype(np.int64) + 1  # FAISS id j is item j+1; FAISS's -1 (no result) becomes 0
        dist = np.where(ids > 0, dist, -np.inf).astype(np.float32)
        if hist is not None:  # the history items' own entries replace the index's
            assert item_table is not None, "history scores need the item table"
            _drop_listed(dist, ids, hist.items, n_items)
            ids, dist = np.concatenate([ids, hist.items], 1), np.concatenate([dist, hist.dot(u, item_table)], 1)
        if padded is not None:
            _drop_listed(dist, ids, padded[lo : lo + batch_size], n_items)
        top = _canonical(ids, dist, width)
        items_out.append(top.items)
        scores_out.append(top.scores)
    if not items_out:
        return TopK(np.zeros((0, width), np.int64), np.zeros((0, width), np.float32))
    return TopK(items=np.concatenate(items_out), scores=np.concatenate(scores_out))


def topk_faiss(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray] | None = None,
    device: str = "auto",
    index: ApproxIndex | None = None,
    history: HistoryScores | None = None,
) -> TopK:
    """Exact canonical top-k with FAISS ``IndexFlatIP``.

    Rows whose k-th and (k+1)-th results tie are re-ranked by the matmul path, because FAISS
    does not promise which of several tied items it returns at the boundary.
    """
    u_np, t_np = check_embeddings(user_vectors, item_table)
    check_history(history, len(u_np))
    n = t_np.shape[0] - 1
    idx = index or build_index(t_np, "flat", device=device)
    if idx.kind != "flat":
        raise RetrievalError("topk_faiss needs a flat index; use topk_approx for approximate ones")
    wide = _search(idx, u_np, k, n, exclude, history=history, item_table=t_np)
    top = TopK(items=wide.items[:, :k].copy(), scores=wide.scores[:, :k].copy())
    sc = wide.scores
    rows = np.flatnonzero(np.isfinite(sc[:, k]) & (sc[:, k - 1] == sc[:, k]))
    if rows.size:
        sub = topk_matmul(u_np[rows], t_np, k, [exclude[r] for r in rows] if exclude is not None else None,
                          history=history.take(rows) if history is not None else None)
        top.items[rows] = sub.items
        top.scores[rows] = sub.scores
    return top


def topk_exact(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray] | None = None,
    backend: Backend = "auto",
    device: str = "auto",
    history: HistoryScores | None = None,
) -> TopK:
    """Exact canonical top-k: FAISS flat (``auto`` when faiss imports) or chunked matmul."""
    if k < 1:
        raise RetrievalError(f"k must be >= 1; got {k}")
    if backend == "auto":
        backend = "faiss" if faiss_available() else "torch"
    if backend == "faiss":
        return topk_faiss(user_vectors, item_table, k, exclude, device=device, history=history)
    if backend == "torch":
        return topk_matmul(user_vectors, item_table, k, exclude, device=resolve_device(device), history=history)
    raise RetrievalError(f"unknown backend {backend!r}; expected auto, faiss or torch")


def topk_approx(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    k: int,
    index: ApproxIndex,
    exclude: Sequence[np.ndarray] | None = None,
    history: HistoryScores | None = None,
) -> TopK:
    """Top-k from a built (approximate) index: [U, k] arrays."""
    u_np, t_np = check_embeddings(user_vectors, item_table)
    check_history(history, len(u_np))
    wide = _search(index, u_np, k, t_np.shape[0] - 1, exclude, history=history, item_table=t_np)
    return TopK(items=wide.items[:, :k], scores=wide.scores[:, :k])


def recall_vs_exact(approx: TopK, exact: TopK) -> np.ndarray:
    """Per-user |approx ∩ exact| / |exact| over the filled (non-zero) exact slots: [U] float64."""
    out = []
    for lo in range(0, len(exact.items), 1024):
        a, e = approx.items[lo : lo + 1024], exact.items[lo : lo + 1024]
        hit = ((e[:, :, None] == a[:, None, :]) & (e[:, :, None] > 0)).any(2)
        filled = (e > 0).sum(1)
        out.append(np.where(filled > 0, hit.sum(1) / np.maximum(filled, 1), 1.0))
    return np.concatenate(out) if out else np.zeros(0)
