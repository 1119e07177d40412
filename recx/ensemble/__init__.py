"""Ensembles of trained runs: weights chosen on validation, ranked as one dot-product model.

Python API::

    from recx.ensemble import EnsembleOptions, build_ensemble
    build_ensemble(["runs/sasrec-id", "runs/sasrec-text"], "runs/ens", EnsembleOptions(metric="ndcg@10"))
    # then recx.evalrun.run("runs/ens") or Recommender.from_run("runs/ens"), like any run
"""

from __future__ import annotations

from recx.lazy import lazy_exports

# imported lazily so `recx --help` does not load torch
_EXPORTS = {
    "EnsembleUserEncoder": "recx.ensemble.encoder",
    "EnsembleError": "recx.ensemble.run",
    "EnsembleOptions": "recx.ensemble.run",
    "build_ensemble": "recx.ensemble.run",
    "is_ensemble": "recx.ensemble.run",
    "load_ensemble": "recx.ensemble.run",
    "read_ensemble": "recx.ensemble.run",
    "Selection": "recx.ensemble.selection",
    "equal_select": "recx.ensemble.selection",
    "greedy_select": "recx.ensemble.selection",
    "score_scale": "recx.ensemble.selection",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
