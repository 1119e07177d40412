"""Evaluating runs: the `recx eval` command and its Python API, above ``recx.evaluate`` (the
pure metrics library: arrays in, metrics out) and ``recx.inference`` (loading runs).

Python API::

    from recx.evalrun import run
    record = run("runs/sasrec-text", split="test", ks=(10, 20))   # writes runs/.../results.json

    runs.py      load a run's split (``load_embeddings``), ``run`` / ``run_detailed``
    compare.py   ``evaluate_models``: several models, one table, results.json, paired test
    cli.py       `recx eval`
"""

from __future__ import annotations

from recx.lazy import lazy_exports

# imported lazily so `recx --help` does not load torch
_EXPORTS = {
    "run": "recx.evalrun.runs",
    "run_detailed": "recx.evalrun.runs",
    "load_embeddings": "recx.evalrun.runs",
    "EvalOptions": "recx.evalrun.compare",
    "ModelInput": "recx.evalrun.compare",
    "evaluate_models": "recx.evalrun.compare",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
