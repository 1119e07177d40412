"""Start a run from a finished run's weights (`recx train --warm-start RUN`).

The usual two-stage recipe for tuned encoder towers: train the cheap frozen-store tower to
convergence, then unfreeze the encoder's top blocks from there (linear probing, then fine-tuning).
A frozen `id+text` run and an `id+topk` run share every weight but the tuned block itself
(same names: `tower.towers.0.embedding.weight`, `tower.towers.1.adapter.*`, the sequence
encoder), and the tuned block starts from the pretrained weights that produced the
frozen store, so the second stage starts where the first one ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recx.errors import RecxError
from recx.trainer.checkpoint import BEST, load_checkpoint, load_matching_weights, read_run_config

if TYPE_CHECKING:
    from recx.trainer.model import SequentialRecommender
    from recx.trainer.reolm.model import ReoLM


class WarmStartError(RecxError):
    """The warm-start run cannot seed this model (missing checkpoint, other catalog, nothing shared)."""


@dataclass(frozen=True)
class WarmStart:
    """What a warm start copied: weight names loaded, and this model's names left at their fresh values."""

    source: str
    loaded: list[str]
    fresh: list[str]


def warm_start(model: SequentialRecommender | ReoLM, run_dir: str | Path, dataset_fingerprint: str) -> WarmStart:
    """Copy ``run_dir``'s best weights into ``model`` wherever name and shape match.

    Args:
        dataset_fingerprint: this run's dataset fingerprint; the source run must have been
            trained on the same dataset, since the rows of its item table are item ids.
    """
    run_dir = Path(run_dir)
    path = run_dir / BEST
    if not path.is_file():
        raise WarmStartError(f"--warm-start {run_dir}: no {BEST} (not a finished recx run)")
    trained_on = read_run_config(run_dir).get("dataset_fingerprint")
    if trained_on != dataset_fingerprint:
        raise WarmStartError(f"--warm-start {run_dir}: trained on another dataset (fingerprint {str(trained_on)[:12]}, this one {dataset_fingerprint[:12]})")
    # e.g. a Reo-LM that packs more items than the source keeps the source's item positions
    loaded, fresh = load_matching_weights(model, model.adapt_state(load_checkpoint(path)["model"]))
    if not loaded:
        raise WarmStartError(f"--warm-start {path}: no weight of it matches this model by name and shape")
    return WarmStart(str(run_dir), loaded, fresh)
