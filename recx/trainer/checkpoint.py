"""Run directory files: resolved config, checkpoints, per-epoch metrics.

    runs/<name>/config.json     the fully resolved TrainConfig (+ dataset fingerprint, store digests,
                                world size); format and migrations in runconfig.py
    runs/<name>/best.pt         model weights at the best validation epoch
    runs/<name>/last.pt         everything needed to resume: model, optimizer, scheduler,
                                loss RNGs, torch RNG, epoch, early-stopping state
    runs/<name>/metrics.jsonl   one JSON line per epoch
    runs/<name>/curve.png       training curve

    runs/<name>/finished.json   written when training ends (all epochs, or early stopping):
                                commands that take "the latest run" only consider these

Every file is written to a temporary name and renamed, so a killed run never leaves a
truncated checkpoint behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from recx.artifacts import atomic_write_text, read_json_config
from recx.errors import RecxError
from recx.trainer.config import TrainConfig
from recx.workspace import BEST as BEST  # the run layout names live in recx.workspace
from recx.workspace import FINISHED, RUN_CONFIG

LAST = "last.pt"
METRICS = "metrics.jsonl"
CURVE = "curve.png"


# 4: Reo-LM's ROMA options; 3: nested config, run-relative paths; 2: finished.json marks a
# finished run, store digests recorded; 1: neither (recx/trainer/runconfig.py migrates them)
RUN_FORMAT = TrainConfig.FORMAT


class RunError(RecxError):
    """A run directory is missing, incomplete or does not match the request."""


def load_matching_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy the tensors of ``state`` into ``model`` where name and shape match; returns
    (names loaded, the model's names left as built), both sorted."""
    own = model.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded), sorted(k for k in own if k not in loaded)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for truncated or foreign files
        raise RunError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from None


def write_run_config(run_dir: Path, cfg: Any, meta: dict[str, Any]) -> None:
    """config.json: ``cfg`` (a TrainConfig) with run-relative paths, and the run's ``meta``
    (dataset fingerprint, item count, world size, store digests)."""
    from recx.trainer.runconfig import to_disk

    record = {**meta, "run_format": RUN_FORMAT, "config": to_disk(cfg, run_dir)}
    atomic_write_text(run_dir / RUN_CONFIG, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.json in the current format (older formats migrated in memory)."""
    from recx.trainer.runconfig import migrate

    raw = read_json_config(Path(run_dir) / RUN_CONFIG, RunError, f"{run_dir}: not a recx run (no {RUN_CONFIG})")
    return migrate(raw)


def load_run_config(run_dir: Path) -> Any:
    """The TrainConfig a run trained with, its paths resolved where the run folder is now."""
    from recx.trainer.runconfig import from_disk

    return from_disk(read_run_config(run_dir)["config"], Path(run_dir), str(Path(run_dir) / RUN_CONFIG))


def store_digests(cfg: Any) -> dict[str, str]:
    """modality -> content sha256 of every store the model of ``cfg`` (a TrainConfig) reads."""
    from recx.featurize.store import store_digest

    return {m: store_digest(p) for m, p in sorted(cfg.stores_read().items())}


def check_run_inputs(run_dir: Path, saved: dict[str, Any], dataset: Any, digests: dict[str, str]) -> None:
    """Refuse to use a run on a dataset or a store that changed since it was trained.

    ``saved`` is the run's config.json; ``digests`` the stores' content sha256 now (runs
    trained before digests were recorded are checked on the dataset only)."""
    if saved.get("dataset_fingerprint") not in (None, dataset.fingerprint):
        raise RunError(f"{run_dir}: dataset {dataset.path} changed since this run was trained (fingerprint "
                       f"{str(saved['dataset_fingerprint'])[:12]}, now {dataset.fingerprint[:12]}); train a new run on it")
    stores = saved.get("config", {}).get("run", {}).get("stores") or {}
    for modality, digest in sorted((saved.get("store_digests") or {}).items()):
        now = digests.get(modality)
        if now is not None and now != digest:
            raise RunError(f"{run_dir}: its {modality} store {stores.get(modality, '')} changed since this run was trained "
                           f"(content {digest[:12]}, now {now[:12]}: re-featurized?); train a new run, or restore the store")


def mark_finished(run_dir: Path, info: dict[str, Any]) -> None:
    """Record that training ended (every epoch run, or early stopping): ``finished.json``."""
    atomic_write_text(Path(run_dir) / FINISHED, json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(run_dir) / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
