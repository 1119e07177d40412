"""Sequence models, item towers, losses and the training loop (`recx train`).

Public API (imported lazily so `recx --help` does not load torch)::

    fit(cfg, run_dir=None, resume=False) -> FitResult     # train; writes runs/<name>/
    load_trained(run_dir) -> (model, cfg, dataset)       # a finished run, ready to score
    TrainConfig                                           # every option, round-trips to JSON
"""

from __future__ import annotations

from recx.lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "recx.trainer.config",
    "FitResult": "recx.trainer.loop",
    "fit": "recx.trainer.loop",
    "load_trained": "recx.trainer.loop",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
