"""Full-catalog evaluation: exact ranks and metrics, FAISS retrieval, baselines, reports.

Python API::

    from recx.evaluate import run, evaluate_arrays
    record = run("runs/sasrec-text", split="test", ks=(10, 20))   # writes runs/.../results.json
    res = evaluate_arrays(user_vectors, item_table, targets, histories, ks=(10,))
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
    "run": "recx.evaluate.results",
    "run_detailed": "recx.evaluate.results",
    "write_results": "recx.evaluate.results",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
