"""An ensemble of trained runs as one UserEncoder: a weighted sum of scores is an inner product.

Member m scores user u and item i as <u_m, v_m,i>.  With factor f_m = weight_m * scale_m,

    sum_m f_m <u_m, v_m,i> = < concat_m(f_m u_m), concat_m(v_m,i) >,

so the ensemble is an ordinary dot-product model of dimension sum_m D_m: ``recx eval`` ranks it
through the same exact and FAISS paths, and ``recx recommend`` serves it, without a special case.
Members with a history term add it the same way: the ensemble's term is sum_m f_m term_m.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from recx.errors import RecxError
from recx.evaluate.retrieval import HistoryScores
from recx.inference.encoders import UserEncoder


class EnsembleUserEncoder:
    """Members side by side.  item_table() [N+1, sum D_m]; encode(histories) [U, sum D_m]."""

    def __init__(self, members: Sequence[UserEncoder], factors: Sequence[float]):
        if not members or len(members) != len(factors):
            raise ValueError(f"{len(members)} members and {len(factors)} factors: need one factor per member, at least one member")
        self.members = list(members)
        self.factors = [float(f) for f in factors]
        self._table: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return sum(int(m.dim) for m in self.members)

    def item_table(self) -> np.ndarray:
        if self._table is None:
            tables = [m.item_table() for m in self.members]
            rows = {t.shape[0] for t in tables}
            if len(rows) != 1:
                raise ValueError(f"members rank catalogs of different sizes: {sorted(rows)} rows")
            self._table = np.ascontiguousarray(np.concatenate(tables, axis=1), dtype=np.float32)
        return self._table

    def encode(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        parts = [f * m.encode(histories) for m, f in zip(self.members, self.factors)]
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def history_scores(self, histories: Sequence[np.ndarray]) -> HistoryScores | None:
        parts = [(m.history_scores(histories), f) for m, f in zip(self.members, self.factors)]
        parts = [(h, f) for h, f in parts if h is not None]
        return HistoryScores.combine([h for h, _ in parts], [f for _, f in parts]) if parts else None

    def history_encoder(self) -> Any:
        raise RecxError("an ensemble run has no single scriptable user encoder; export its member runs, "
                        "or serve it with `recx recommend --run`")
