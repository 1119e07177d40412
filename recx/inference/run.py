"""A finished training run as the inference layer sees it: a user encoder, its catalog, its config.

``recx eval`` (``recx.evalrun``, through :func:`export_embeddings`), ``recx recommend``, ``recx export`` and
``Recommender.from_run`` all load runs here, so evaluation and serving rank with the same
vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recx.data.dataset import SequenceDataset
from recx.evaluate.retrieval import HistoryScores
from recx.inference.encoders import ModelUserEncoder
from recx.trainer.checkpoint import BEST, RunError


@dataclass
class LoadedRun:
    """A trained run ready to score: its encoder, dataset and resolved config (+ ``name``)."""

    run_dir: Path
    encoder: ModelUserEncoder
    dataset: SequenceDataset
    config: dict[str, Any]
    checkpoint: str = BEST


@dataclass
class RunEmbeddings:
    """Everything needed to rank the full catalog for one split of a trained run.

    user_vectors [U, D] float32, item_table [N+1, D] float32 (row 0 padding; score = inner
    product), targets [U] int64 in 1..N, histories: each user's items before the target,
    history: the model's scores for those items (added to their inner products), or None.
    """

    user_vectors: np.ndarray
    item_table: np.ndarray
    targets: np.ndarray
    histories: list[np.ndarray]
    dataset: SequenceDataset
    config: dict[str, Any] = field(default_factory=dict)
    history: HistoryScores | None = None


# marker file -> "module:function" that loads a run folder of that kind as a LoadedRun, tried in
# this order; named, not imported, so a kind built on loaded runs (ensembles) can import this module
RUN_KINDS: dict[str, str] = {
    "ensemble.json": "recx.ensemble.run:load_ensemble",
    "config.json": "recx.inference.run:load_trained_run",
}


def load_run(run_dir: str | Path, checkpoint: str = BEST, dataset: str | Path | None = None, device: str | None = None) -> LoadedRun:
    """Load a finished run folder of any kind in RUN_KINDS (a trained run, an ensemble of runs);
    RunError / EnsembleError names what is missing.

    ``dataset``: read this dataset folder instead of the one the run recorded; it must hold the
    same data (the run's dataset fingerprint is checked).  ``device`` (auto, cpu, cuda, cuda:N;
    None: where it loads, the CPU): where the user tower runs."""
    import importlib

    for marker, target in RUN_KINDS.items():
        if (Path(run_dir) / marker).is_file():
            module, fn = target.split(":")
            return getattr(importlib.import_module(module), fn)(run_dir, checkpoint, dataset=dataset, device=device)
    raise RunError(f"{run_dir}: not a recx run (no {' or '.join(RUN_KINDS)})" + ("" if Path(run_dir).is_dir() else "; no such folder"))


def load_trained_run(run_dir: str | Path, checkpoint: str = BEST, dataset: str | Path | None = None, device: str | None = None) -> LoadedRun:
    """A trained run (``config.json`` + ``checkpoint``) with its model as the user encoder."""
    from recx.trainer.loop import load_trained

    model, cfg, data = load_trained(run_dir, checkpoint, dataset_dir=dataset)  # the run's fingerprint check refuses other data
    if device is not None:
        from recx.device import resolve_device

        model = model.to(resolve_device(device))
    config = {**cfg.options(), "name": cfg.run.name or Path(run_dir).name}  # flat option names: model, item_tower, loss, ...
    return LoadedRun(Path(run_dir), ModelUserEncoder(model, cfg.model.max_len, cfg.optim.eval_batch_size), data, config, checkpoint)


def export_embeddings(run_dir: str | Path, split: str = "test", checkpoint: str = BEST, dataset: str | Path | None = None,
                      device: str | None = None) -> RunEmbeddings:
    """User vectors of ``split`` (valid or test) and the item table of a run: what ``recx eval`` ranks."""
    run = load_run(run_dir, checkpoint, dataset=dataset, device=device)
    return split_embeddings(run, split)


def split_embeddings(run: LoadedRun, split: str = "test") -> RunEmbeddings:
    histories, targets = run.dataset.split(split)
    users = run.encoder.encode(histories)
    return RunEmbeddings(users, run.encoder.item_table(), targets, histories, run.dataset, run.config, run.encoder.history_scores(histories))
