"""The evaluation protocol: full-catalog ranks -> metrics, for arrays, runs and baselines.

Metrics always come from the exact 1-based rank of each user's target among all N items
(chunked matmul with masked scoring, see ``retrieval.ranks_matmul``), so HR@K, NDCG@K and MRR
are exact for any K.  An approximate index (``ivf``, ``hnsw``) is evaluated *as served*: its
top-K lists give ``hr@K``/``ndcg@K`` under ``approx_metrics``, and ``index_recall@K`` measures
how much of the exact top-K it returned (computed against the exact lists, not assumed).

With ``exclude_history`` the user's own history items (all but the target itself, if it is a
repeat) are removed from the ranking, both for ranks and for top-K lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from recx.errors import RecxError
from recx.evaluate import retrieval as R
from recx.evaluate.metrics import TieRule, metrics_from_ranks, per_user_metrics


class EvalError(RecxError, ValueError):
    """Inconsistent evaluation inputs; the message says what."""


@dataclass
class EvalResult:
    """What one model scored on one split.

    Attributes:
        metrics: mean ``hr@K``, ``ndcg@K`` for each K and ``mrr`` (exact, full catalog).
        ranks: [U] float64 1-based target ranks.
        per_user: per-user metric values, each [U] float64 (keys as in ``metrics``).
        info: protocol facts recorded with the result (ks, ties, index, counts, timings...).
        approx_metrics / index_recall: only for approximate indexes.
        topk: the top-max(K) lists when they were computed.
    """

    metrics: dict[str, float]
    ranks: np.ndarray
    per_user: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    approx_metrics: dict[str, float] | None = None
    index_recall: dict[str, float] | None = None
    topk: R.TopK | None = None


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise EvalError(f"--k values must be positive integers; got {list(ks)}")
    return out


def _check_ties(ties: str) -> None:
    if ties not in ("pessimistic", "expected"):
        raise EvalError(f"unknown tie rule {ties!r}; expected pessimistic or expected")


def _topk_metrics(top: R.TopK, targets: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """HR@K and NDCG@K of top-K lists (a target outside the list is a miss)."""
    pos = np.where(top.items == targets[:, None])
    rank = np.full(len(targets), np.inf)
    rank[pos[0]] = pos[1] + 1.0
    out: dict[str, float] = {}
    for k in ks:
        hit = rank <= k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(np.where(hit, rank, 1.0) + 1.0), 0.0).mean())
    return out


def evaluate_arrays(
    user_vectors: np.ndarray,
    item_table: np.ndarray,
    targets: np.ndarray,
    histories: Sequence[np.ndarray] | None,
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
    backend: R.Backend = "auto",
    index: R.IndexKind = "flat",
    index_params: dict[str, int] | None = None,
    device: str = "auto",
    with_topk: bool = False,
    history: R.HistoryScores | None = None,
) -> EvalResult:
    """Evaluate user vectors [U, D] against an item table [N+1, D] (row 0 padding).

    Args:
        targets: [U] item indices 1..N.  histories: per user, the items before the target
            (needed for ``exclude_history``; may be None otherwise).
        backend: exact top-K path (``faiss`` flat, ``torch`` matmul, ``auto``); used when top-K
            lists are needed (``with_topk`` or an approximate index).
        index: ``flat`` (exact) or ``ivf`` / ``hnsw`` (approximate; see module doc).
        index_params: nlist, nprobe, hnsw_m, ef_construction, ef_search.
        history: the model's scores for each user's own items (its repeat-aware term), added
            on every path (retrieval.HistoryScores).
    """
    ks = _check_ks(ks)
    _check_ties(ties)
    u, t = R.check_embeddings(user_vectors, item_table)
    tg = np.asarray(targets, dtype=np.int64)
    n_items = t.shape[0] - 1
    if exclude_history and histories is None:
        raise EvalError("exclude_history needs the users' histories")
    if histories is not None and len(histories) != len(u):
        raise EvalError(f"{len(histories)} histories for {len(u)} users")
    exclude = R.exclusion_lists(histories, tg) if exclude_history else None
    dev = R.resolve_device(device)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ranks = R.ranks_matmul(u, t, tg, exclude, ties, device=dev, history=history)
    timings["rank_seconds"] = time.perf_counter() - t0
    result = EvalResult(
        metrics=metrics_from_ranks(ranks, ks),
        ranks=ranks,
        per_user=per_user_metrics(ranks, ks),
        info={
            "ks": list(ks),
            "exclude_history": bool(exclude_history),
            "ties": ties,
            "index": index,
            "rank_backend": "matmul",
            "device": dev,
            "num_users": int(len(u)),
            "num_items": int(n_items),
            "dim": int(u.shape[1]),
            "history_term": history is not None,
            "timings": timings,
        },
    )
    kmax = ks[-1]
    if with_topk or index != "flat":
        t0 = time.perf_counter()
        exact = R.topk_exact(u, t, kmax, exclude, backend=backend, device=device, history=history)  # FAISS resolves 'auto' itself
        timings["exact_topk_seconds"] = time.perf_counter() - t0
        result.topk = exact
        result.info["topk_backend"] = ("faiss" if R.faiss_available() else "torch") if backend == "auto" else backend
    if index != "flat":
        p = dict(index_params or {})
        built = R.build_index(t, index, device=device, **p)
        t0 = time.perf_counter()
        approx = R.topk_approx(u, t, kmax, built, exclude, history=history)
        timings["index_build_seconds"] = built.build_seconds
        timings["index_search_seconds"] = time.perf_counter() - t0
        result.info["index_params"] = built.params
        result.info["index_on_gpu"] = built.on_gpu
        result.approx_metrics = _topk_metrics(approx, tg, ks)
        result.index_recall = {
            f"index_recall@{k}": float(R.recall_vs_exact(R.TopK(approx.items[:, :k], approx.scores[:, :k]), R.TopK(result.topk.items[:, :k], result.topk.scores[:, :k])).mean())
            for k in ks
        }
        result.topk = approx
    return result


def popularity_result(
    dataset: Any,
    split: str,
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
) -> EvalResult:
    """The most-popular baseline: every user gets items ranked by training interactions
    (``dataset.item_popularity()``, counts over ``seq[:-2]``).  Equal counts are ties."""
    histories, targets = dataset.split(split)
    return _rank_by_counts(dataset.item_popularity(), histories, targets, ks, exclude_history, ties, "popularity")


def _rank_by_counts(counts: np.ndarray, histories: Any, targets: np.ndarray, ks: Iterable[int], exclude_history: bool, ties: TieRule, name: str) -> EvalResult:
    """Every user ranks the catalog by one count per item ([N+1]; equal counts are ties)."""
    table = np.asarray(counts, dtype=np.float32)[:, None]  # [N+1, 1], exact below 2**24
    users = np.ones((len(targets), 1), dtype=np.float32)
    res = evaluate_arrays(users, table, targets, histories, ks, exclude_history, ties, backend="torch", device="cpu")
    res.info["model"] = name
    return res


def recent_popularity_result(
    dataset: Any,
    split: str,
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
    last: int = 1,
) -> EvalResult:
    """Most popular among what users bought last: items ranked by how many of the split's
    histories hold them among their ``last`` newest items.

    All-time popularity fails where the catalog drifts: on amazon-office the test items are
    mostly new products, rare in the training part, so all-time popularity ranks below random
    while this baseline (which reads only the histories the models read too) does not.
    """
    histories, targets = dataset.split(split)
    tails = [np.asarray(h[-last:], dtype=np.int64) for h in histories if len(h)]
    counts = np.bincount(np.concatenate(tails) if tails else np.zeros(0, np.int64), minlength=dataset.num_items + 1)
    counts[0] = 0
    return _rank_by_counts(counts, histories, targets, ks, exclude_history, ties, f"recent popularity (last {last})")


def random_result(
    n_items: int,
    targets: np.ndarray,
    histories: Sequence[np.ndarray] | None,
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
) -> EvalResult:
    """The uniformly random ranker, in expectation (no sampling): with M candidates the target's
    rank is uniform on 1..M, so E[HR@K] = min(K, M)/M, E[NDCG@K] = sum_{r<=min(K,M)} 1/log2(r+1) / M
    and E[RR] = H_M / M.  ``ranks`` holds the expected rank (M+1)/2."""
    ks = _check_ks(ks)
    tg = np.asarray(targets, dtype=np.int64)
    if exclude_history:
        if histories is None:
            raise EvalError("exclude_history needs the users' histories")
        m = n_items - np.array([len(x) for x in R.exclusion_lists(histories, tg)], dtype=np.int64)
    else:
        m = np.full(len(tg), n_items, dtype=np.int64)
    r = np.arange(1, n_items + 1, dtype=np.float64)
    cum_dcg = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(r + 1.0))])
    cum_rr = np.concatenate([[0.0], np.cumsum(1.0 / r)])
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        per_user[f"hr@{k}"] = np.minimum(k, m) / m
        per_user[f"ndcg@{k}"] = cum_dcg[np.minimum(k, m)] / m
    per_user["mrr"] = cum_rr[m] / m
    metrics = {name: float(v.mean()) for name, v in per_user.items()}
    return EvalResult(
        metrics=metrics,
        ranks=(m + 1) / 2.0,
        per_user=per_user,
        info={"model": "random", "ks": list(ks), "exclude_history": bool(exclude_history), "expected": True},
    )
