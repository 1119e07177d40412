"""Ensembles of trained runs: weights chosen on validation, ranked as one dot-product model."""

from recx.ensemble.encoder import EnsembleUserEncoder
from recx.ensemble.run import EnsembleError, EnsembleOptions, build_ensemble, is_ensemble, load_ensemble, read_ensemble
from recx.ensemble.selection import Selection, equal_select, greedy_select, score_scale

__all__ = ["EnsembleError", "EnsembleOptions", "EnsembleUserEncoder", "Selection", "build_ensemble", "equal_select", "greedy_select",
           "is_ensemble", "load_ensemble", "read_ensemble", "score_scale"]
