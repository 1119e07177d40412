"""Experiment tracking of a training run: `recx train --log tensorboard | mlflow`.

A tracker hears each validation interval's metrics row (the row metrics.jsonl stores) and the
end of the run.  TensorBoard writes event files into ``<run>/tensorboard``; MLflow records the
options as params, every row's numbers as metrics by epoch, and the curve as an artifact.  A
resumed run continues the MLflow run it started (its id is kept in ``<run>/tracking.json``),
and epochs logged before an interruption are not logged twice.

Neither backend is a dependency of recx: the ``track`` extra installs both, and asking for one
that is absent is refused in one line before training starts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from recx.artifacts import atomic_write_text
from recx.errors import RecxError
from recx.trainer.checkpoint import CURVE
from recx.trainer.config import TrainConfig

TRACKING_FILE = "tracking.json"  # the MLflow run a resumed run continues
EXPERIMENT = "recx"


class TrackingError(RecxError):
    """The tracking backend is missing or cannot be reached."""


class Tracker(Protocol):
    def log_epoch(self, row: dict[str, Any]) -> None:
        """One validation interval: ``row`` as metrics.jsonl stores it (epoch, loss, seconds, valid...)."""

    def close(self, finished: bool) -> None:
        """The run stopped: finished (trained to its end) or interrupted (resumable)."""


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row, flat: ``loss``, ``seconds``, ``valid/ndcg@10``, ..."""
    out = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}
    out.update({f"valid/{k}": float(v) for k, v in (row.get("valid") or {}).items()})
    return out


class TensorBoardTracker:
    def __init__(self, run_dir: Path, cfg: TrainConfig):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(cfg.to_dict(), indent=1, default=str) + "\n```", 0)

    def log_epoch(self, row: dict[str, Any]) -> None:
        for name, value in scalars(row).items():
            self.writer.add_scalar(name, value, row["epoch"])
        self.writer.flush()

    def close(self, finished: bool) -> None:
        self.writer.close()


class MlflowTracker:
    """Through ``MlflowClient`` (no process-global active run, so trials in one process never mix)."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, uri: str, resume: bool):
        from mlflow.tracking import MlflowClient

        self.run_dir, self.client = run_dir, MlflowClient(uri)
        saved = run_dir / TRACKING_FILE
        if resume and saved.is_file():
            self.run_id = json.loads(saved.read_text(encoding="utf-8"))["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT, artifact_location=artifact_root(uri))
        run = self.client.create_run(experiment_id, run_name=run_dir.name, tags={"recx.run_dir": str(run_dir.resolve())})
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(name, json.dumps(value) if isinstance(value, dict) else str(value)) for name, value in cfg.options().items()]
        self.client.log_batch(self.run_id, params=params)  # one write, not one per option
        atomic_write_text(saved, json.dumps({"mlflow_run_id": self.run_id, "tracking_uri": uri}) + "\n")

    def log_epoch(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(name.replace("@", "_at_"), value, stamp, int(row["epoch"])) for name, value in scalars(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, finished: bool) -> None:
        if (self.run_dir / CURVE).is_file():
            self.client.log_artifact(self.run_id, str(self.run_dir / CURVE))
        self.client.set_terminated(self.run_id, status="FINISHED" if finished else "KILLED")


def default_uri(cfg: TrainConfig) -> str:
    """``--log-uri``, else $MLFLOW_TRACKING_URI, else a SQLite database in mlruns/ beside the runs
    folder (MLflow 3 refuses its old file store unless told otherwise)."""
    if cfg.run.log_uri:
        return cfg.run.log_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = Path(cfg.run.runs_dir).resolve().parent / "mlruns"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store go next to its database; other stores keep their own default."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
    return None


REQUIRES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def check_backend(cfg: TrainConfig) -> None:
    """Refuse a tracker whose package is not installed, before the run starts."""
    module = REQUIRES.get(cfg.run.log)
    if module and importlib.util.find_spec(module) is None:
        raise TrackingError(f"--log {cfg.run.log} needs the {module} package: pip install 'recx[track]' (or pip install {module})")


def open_tracker(cfg: TrainConfig, run_dir: Path, resume: bool) -> Tracker | None:
    """The run's tracker (None with ``--log none``)."""
    if cfg.run.log == "none":
        return None
    check_backend(cfg)
    if cfg.run.log == "tensorboard":
        return TensorBoardTracker(run_dir, cfg)
    return MlflowTracker(run_dir, cfg, default_uri(cfg), resume)
