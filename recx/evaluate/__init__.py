"""Full-catalog evaluation as a library: arrays in, metrics out (exact ranks and metrics,
FAISS retrieval, baselines, statistics, result records and report tables).

It loads no run and imports nothing above it; evaluating a run folder (`recx eval`,
``recx.evalrun.run``) lives in ``recx.evalrun``.

Python API::

    from recx.evaluate import evaluate_arrays
    res = evaluate_arrays(user_vectors, item_table, targets, histories, ks=(10,))
    res.metrics["ndcg@10"], res.ranks
"""

from __future__ import annotations

from recx.lazy import lazy_exports

# imported lazily so `recx --help` does not load torch
_EXPORTS = {
    "EvalError": "recx.evaluate.protocol",
    "EvalResult": "recx.evaluate.protocol",
    "evaluate_arrays": "recx.evaluate.protocol",
    "popularity_result": "recx.evaluate.protocol",
    "random_result": "recx.evaluate.protocol",
    "recent_popularity_result": "recx.evaluate.protocol",
    "metrics_from_ranks": "recx.evaluate.metrics",
    "per_user_metrics": "recx.evaluate.metrics",
    "target_ranks": "recx.evaluate.metrics",
    "result_record": "recx.evaluate.results",
    "write_results": "recx.evaluate.results",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
