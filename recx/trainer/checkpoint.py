"""Run directory files: resolved config, checkpoints, per-epoch metrics.

    runs/<name>/config.json     the fully resolved TrainConfig (+ dataset fingerprint)
    runs/<name>/best.pt         model weights at the best validation epoch
    runs/<name>/last.pt         everything needed to resume: model, optimizer, scheduler,
                                loss RNGs, torch RNG, epoch, early-stopping state
    runs/<name>/metrics.jsonl   one JSON line per epoch
    runs/<name>/curve.png       training curve

Every file is written to a temporary name and renamed, so a killed run never leaves a
truncated checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from recx.errors import RecxError
from recx.workspace import RUN_CONFIG, atomic_write_text

BEST = "best.pt"
LAST = "last.pt"
METRICS = "metrics.jsonl"
CURVE = "curve.png"


RUN_META_KEYS = ("dataset_fingerprint", "num_items", "world_size")  # config.json keys that are not options


class RunError(RecxError):
    """A run directory is missing, incomplete or does not match the request."""


def save_atomic(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_run_config(run_dir: Path, config: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RUN_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_json_config(path: Path, error: type[Exception], missing: str) -> dict[str, Any]:
    """A JSON config file; ``error(missing)`` when it is absent, ``error`` naming the file when it is not JSON."""
    if not path.is_file():
        raise error(missing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e.msg})") from None


def read_run_config(run_dir: Path) -> dict[str, Any]:
    return read_json_config(Path(run_dir) / RUN_CONFIG, RunError, f"{run_dir}: not a recx run (no {RUN_CONFIG})")


def saved_options(run_dir: Path) -> dict[str, Any]:
    """The TrainConfig values of a run (config.json without its bookkeeping keys)."""
    values = {k: v for k, v in read_run_config(run_dir).items() if k not in RUN_META_KEYS}
    values.setdefault("loss_weighting", "batch")  # runs written before the option trained this way
    return values


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(run_dir) / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
