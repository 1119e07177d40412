"""``Recommender``: top-K items for histories, users or items, from a run or an export.

    from recx.inference import Recommender
    rec = Recommender.from_run("runs/sasrec-id")            # or Recommender.from_export("export/")
    out = rec.recommend([["B001", "B002"], ["B003"]], k=10)  # original item ids in and out
    out.item_ids[0], out.scores[0]                           # the first history's top-10
    rec.similar_items(["B001"], k=5).item_ids[0]             # nearest items by inner product

Ranking is ``recx.evaluate.retrieval``'s: exact canonical top-K (FAISS flat or chunked matmul,
ties broken by the smaller item index) or an approximate FAISS index, over the same user and
item vectors ``recx eval`` scores, so for a test history the top-K here is the evaluator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from recx.errors import RecxError
from recx.evaluate import retrieval as R
from recx.inference.catalog import Catalog
from recx.inference.encoders import UserEncoder


class RecommendError(RecxError, ValueError):
    """A request the recommender cannot serve; the message says which id or option."""


@dataclass
class Recommendations:
    """Top-K lists for Q queries (histories, users or items).

    Attributes:
        queries: Q labels (a user id, ``history 1``..., or an item id).
        items: [Q, K] int64 item indices (0 = no item: the catalog ran out after exclusions).
        scores: [Q, K] float32 inner products.
        item_ids / titles: per query, the K original ids and titles (unfilled slots left out).
        skipped: per query label, the ids that were not in the catalog (reported, not used).
        dropped: queries with nothing to score (an unknown user or item, a history of unknown
            ids) -> why; they have no row.
    """

    queries: list[str]
    items: np.ndarray
    scores: np.ndarray
    item_ids: list[list[str]]
    titles: list[list[str | None]]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def rows(self) -> Iterator[dict[str, Any]]:
        """One dict per (query, rank): query, rank (1-based), item_id, score, title."""
        for q, label in enumerate(self.queries):
            for r, (iid, title) in enumerate(zip(self.item_ids[q], self.titles[q])):
                yield {"query": label, "rank": r + 1, "item_id": iid, "score": float(self.scores[q, r]), "title": title}

    def messages(self) -> list[str]:
        """Human-readable notes on skipped ids and dropped queries."""
        out = [f"{label}: skipped unknown item id(s) {', '.join(map(repr, ids))}" for label, ids in self.skipped.items() if ids]
        out += [f"{label}: {why}" for label, why in self.dropped.items()]
        return out


class Recommender:
    """A user encoder + its catalog + a retrieval method.

    Args:
        encoder: histories of item indices -> [U, D]; ``item_table()`` [N+1, D].
        catalog: ids and titles of items 0..N (must match the table's rows).
        index: an approximate FAISS index over the table (None: exact retrieval).
        dataset: the dataset whose users ``recommend_users`` reads (its catalog must match).
        backend: exact path, ``auto`` (FAISS flat when installed), ``faiss`` or ``torch``.
    """

    def __init__(
        self,
        encoder: UserEncoder,
        catalog: Catalog,
        index: R.ApproxIndex | None = None,
        dataset: Any | None = None,
        backend: R.Backend = "auto",
        info: dict[str, Any] | None = None,
    ):
        table = encoder.item_table()
        if table.shape[0] != catalog.num_items + 1:
            raise RecommendError(f"item table has {table.shape[0]} rows but catalog {catalog.name!r} has {catalog.num_items} items (+ padding)")
        if dataset is not None and dataset.catalog_fingerprint != catalog.catalog_fingerprint:
            raise RecommendError(
                f"dataset {dataset.path} (catalog {dataset.catalog_fingerprint[:12]}) is not the catalog this model "
                f"serves ({catalog.name}, {catalog.catalog_fingerprint[:12]}); its ids would map to the wrong items"
            )
        self.encoder = encoder
        self.catalog = catalog
        self.dataset = dataset
        self.backend: R.Backend = backend
        self.info = dict(info or {})
        self._approx = index if index is not None and index.kind != "flat" else None
        self._flat = index if index is not None and index.kind == "flat" else None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best.pt", index: str = "flat", index_params: dict[str, int] | None = None,
                 backend: R.Backend = "auto", dataset: str | Path | None = None, device: str | None = None) -> "Recommender":
        """A finished training run (its dataset gives ids, titles and users).

        ``dataset``: read this dataset folder instead of the one the run recorded (the same data,
        checked); ``device``: where the user tower runs (default: the CPU)."""
        from recx.inference.run import load_run

        run = load_run(run_dir, checkpoint, dataset=dataset, device=device)
        built = R.build_index(run.encoder.item_table(), index, device="cpu", **(index_params or {})) if index != "flat" else None  # type: ignore[arg-type]
        info = {"source": "run", "run_dir": str(Path(run_dir).resolve()), "run": run.config.get("name"), "config": run.config}
        return cls(run.encoder, Catalog.from_dataset(run.dataset), built, run.dataset, backend, info)

    @classmethod
    def from_export(cls, export_dir: str | Path, dataset: Any | None = None, verify: bool = True, device: str | None = None) -> "Recommender":
        """An export dir written by ``recx export`` (checked against its manifest).

        ``dataset`` (a path or SequenceDataset) is only needed to look users up by id; it must
        have the catalog the export was made from.  ``device``: where the TorchScript user
        encoder runs (default: the CPU)."""
        from recx.inference.export import load_export

        return cls.from_exported(load_export(export_dir, verify=verify), dataset, device)

    @classmethod
    def from_exported(cls, exported: Any, dataset: Any | None = None, device: str | None = None) -> "Recommender":
        """A loaded ``recx.inference.export.ExportedRun`` (see :meth:`from_export`)."""
        from recx.data.dataset import SequenceDataset

        if dataset is not None and not isinstance(dataset, SequenceDataset):
            dataset = SequenceDataset(dataset)
        if dataset is not None:
            exported.check_dataset(dataset)
        table = exported.vectors()
        info = {"source": "export", "export_dir": str(exported.path.resolve()), "run": exported.manifest["run"]["name"],
                "config": exported.manifest["config"]}
        return cls(exported.user_encoder(table, device), exported.catalog(), exported.index(), dataset, info=info)

    # -- vectors ------------------------------------------------------------------------------
    @property
    def item_table(self) -> np.ndarray:
        """[N+1, D] float32 (row 0 padding)."""
        return self.encoder.item_table()

    def encode_items(self, item_ids: Sequence[str] | None = None) -> np.ndarray:
        """[n, D] float32 vectors of ``item_ids`` (all N items, in index order, when None).
        An unknown id is an error here: a vector cannot be skipped silently."""
        table = self.item_table
        if item_ids is None:
            return table[1:]
        idx, unknown = self.catalog.resolve(item_ids)
        if unknown:
            raise RecommendError(f"unknown item id(s) {', '.join(map(repr, unknown[:5]))} in catalog {self.catalog.name!r}")
        return table[idx]

    def encode_histories(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """[U, D] user vectors of histories of original item ids (unknown ids left out)."""
        return self.encoder.encode([self.catalog.resolve(h)[0] for h in histories])

    # -- retrieval ----------------------------------------------------------------------------
    def topk(self, user_vectors: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None,
             history: R.HistoryScores | None = None) -> R.TopK:
        """Top-k item indices and scores for query vectors [Q, D] (``exclude``: per query;
        ``history``: the model's scores for each query's own items)."""
        table = self.item_table
        if self._approx is not None:
            return R.topk_approx(user_vectors, table, k, self._approx, exclude, history=history)
        backend = self.backend
        if backend == "auto":
            backend = "faiss" if R.faiss_available() else "torch"
        if backend == "faiss":
            if self._flat is None:
                self._flat = R.build_index(table, "flat", device="auto")
            if k < 1:
                raise RecommendError(f"k must be >= 1; got {k}")
            return R.topk_faiss(user_vectors, table, k, exclude, index=self._flat, history=history)
        return R.topk_exact(user_vectors, table, k, exclude, backend=backend, history=history)

    def recommend_indices(self, histories: Sequence[np.ndarray], k: int = 10, exclude_history: bool = False) -> R.TopK:
        """Top-k for histories of item indices 1..N: [U, k] indices and scores (the model's
        history term, if it has one, included)."""
        users = self.encoder.encode(histories)
        exclude = [np.unique(np.asarray(h, dtype=np.int64)) for h in histories] if exclude_history else None
        return self.topk(users, k, exclude, self.encoder.history_scores(histories))

    def _listing(self, labels: list[str], top: R.TopK, skipped: dict[str, list[str]], dropped: dict[str, str]) -> Recommendations:
        ids = [[self.catalog.item_ids[i] for i in row if i > 0] for row in top.items]
        titles = [[self.catalog.titles[i] for i in row if i > 0] for row in top.items]
        return Recommendations(labels, top.items, top.scores, ids, titles, skipped, dropped)

    def _serve(self, labels: list[str], histories: list[list[str]], k: int, exclude_history: bool) -> Recommendations:
        keep, resolved, skipped, dropped = [], [], {}, {}
        for label, hist in zip(labels, histories):
            idx, unknown = self.catalog.resolve(hist)
            if unknown:
                skipped[label] = unknown
            if len(idx):
                keep.append(label)
                resolved.append(idx)
            else:
                dropped[label] = "no item id of this history is in the catalog; nothing to recommend from"
        top = self.recommend_indices(resolved, k, exclude_history) if resolved else R.TopK(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return self._listing(keep, top, skipped, dropped)

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10, exclude_history: bool = False, labels: Sequence[str] | None = None) -> Recommendations:
        """Top-k for each history of original item ids, oldest first.

        Unknown ids are left out and listed in ``skipped``; a history with no known id is
        listed in ``dropped`` and gets no row.  ``exclude_history`` removes the history's
        own items from its list."""
        if isinstance(histories, str) or any(isinstance(h, str) for h in histories):
            raise RecommendError("histories must be a list of lists of item ids, e.g. [['B001', 'B002']]")
        labels = list(labels) if labels is not None else [f"history {i + 1}" for i in range(len(histories))]
        return self._serve(labels, [list(h) for h in histories], k, exclude_history)

    def recommend_users(self, user_ids: Sequence[str], k: int = 10, exclude_history: bool = False) -> Recommendations:
        """Top-k for known users of the dataset, from their whole sequence (what comes next)."""
        if self.dataset is None:
            raise RecommendError("recommending for user ids needs the dataset: pass dataset= (or --dataset) with the export's catalog")
        if not hasattr(self, "_user_index"):
            self._user_index = {uid: u for u, uid in enumerate(self.dataset.user_ids)}
        labels, histories, dropped = [], [], {}
        for uid in user_ids:
            u = self._user_index.get(str(uid))
            if u is None:
                dropped[f"user {uid}"] = f"unknown user id (not in {self.dataset.path}); skipped"
                continue
            labels.append(str(uid))
            histories.append(self.dataset.sequence(u))
        top = self.recommend_indices(histories, k, exclude_history) if histories else R.TopK(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return self._listing(labels, top, {}, dropped)

    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> Recommendations:
        """For each item, the k other items with the largest inner product with its vector."""
        if isinstance(item_ids, str):
            item_ids = [item_ids]
        labels, queries, dropped = [], [], {}
        for iid in item_ids:
            i = self.catalog.index_of(iid)
            if i is None:
                dropped[str(iid)] = f"unknown item id (not in catalog {self.catalog.name!r}); skipped"
            else:
                labels.append(str(iid))
                queries.append(i)
        idx = np.asarray(queries, dtype=np.int64)
        top = self.topk(self.item_table[idx], k, [np.array([i]) for i in idx]) if len(idx) else R.TopK(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return self._listing(labels, top, {}, dropped)
