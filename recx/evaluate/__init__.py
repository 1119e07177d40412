"""Full-catalog evaluation: exact ranks and metrics, FAISS retrieval, baselines, reports.

Python API::

    from recx.evaluate import run, evaluate_arrays
    record = run("runs/sasrec-text", split="test", ks=(10, 20))   # writes runs/.../results.json
    res = evaluate_arrays(user_vectors, item_table, targets, histories, ks=(10,))
"""

from recx.evaluate.metrics import metrics_from_ranks, per_user_metrics, target_ranks
from recx.evaluate.protocol import EvalError, EvalResult, evaluate_arrays, popularity_result, random_result
from recx.evaluate.results import run, run_detailed, write_results

__all__ = [
    "EvalError",
    "EvalResult",
    "evaluate_arrays",
    "metrics_from_ranks",
    "per_user_metrics",
    "popularity_result",
    "random_result",
    "run",
    "run_detailed",
    "target_ranks",
    "write_results",
]
