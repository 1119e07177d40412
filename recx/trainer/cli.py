"""`recx train`: options resolve as defaults < recx.toml [train] < --config FILE < command line.

Every model, tower, loss and optimiser option is generated from its config field
(recx/trainer/config.py); this module adds only the options that are not config: the run to
resume, a config file, where to write, and quiet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.options import out_option, quiet_option, run_option
from recx.trainer.cli_options import command, given_options
from recx.trainer.config import OPTIONS, RESUMABLE, ConfigError, TrainConfig


def workspace_layer() -> dict[str, Any]:
    """Options from recx.toml (dataset, stores, runs dir, [train]) if in a workspace."""
    from recx.trainer.config import flatten_options
    from recx.workspace import NoWorkspace, Workspace

    try:
        ws = Workspace.find()
    except NoWorkspace:
        return {}
    layer: dict[str, Any] = flatten_options(dict(ws.section("train")), str(ws.root / "recx.toml"))
    layer["dataset"] = str(ws.dataset_dir)
    layer["runs_dir"] = str(ws.runs_dir)
    layer["stores"] = {m: str(ws.resolve(p)) for m, p in ws.section("stores").items()}
    return layer


def train(
    resume: bool = typer.Option(False, "--resume", help="Continue a run from its last checkpoint: the one --run names, else the workspace's latest."),
    run: Optional[Path] = run_option("Run folder to resume (with --resume)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run.toml whose values the command line overrides."),
    out: Optional[Path] = out_option("Run folder to write (default: <runs>/<--name>)."),
    quiet: bool = quiet_option(),
    **options: Any,
) -> None:
    """Train a sequence recommender; writes runs/<name>/ (config, checkpoints, metrics, curve)."""
    from recx.trainer.checkpoint import load_run_config
    from recx.trainer.loop import fit

    given = given_options(OPTIONS, options)
    progress = not quiet
    if resume:
        run_dir = run or _latest_run()
        ignored = sorted(k for k in given if k not in RESUMABLE) + (["config"] if config else []) + (["out"] if out else [])
        if ignored:
            flags = ", ".join(OPTIONS[k].flag if k in OPTIONS else f"--{k}" for k in ignored)
            raise ConfigError(f"--resume continues {run_dir} with its saved options, so {flags} would be ignored; start a new run "
                              f"to change {'them' if len(ignored) > 1 else 'it'} (only --epochs, --patience and --device apply to a resumed run)")
        cfg = load_run_config(run_dir)
        for name, value in given.items():
            cfg.set(name, value)
        cfg.validate()
        result = fit(cfg, run_dir=run_dir, resume=True, progress=progress)
    else:
        if run is not None:
            raise ConfigError(f"--run {run} names a run to resume: add --resume, or use -o/--out for a new run's folder")
        file_layer = TrainConfig.read_toml(config) if config else {}
        out_layer = {"runs_dir": str(Path(out).resolve().parent), "name": Path(out).name} if out is not None else {}
        cfg = TrainConfig.resolve(workspace_layer(), file_layer, given, out_layer)
        refused = cfg.inapplicable({*file_layer, *given})  # recx.toml's [train] holds defaults for every model: not checked
        if refused:
            raise ConfigError(refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""))
        cfg.run.stores = cfg.stores_read()  # record only the stores this model reads
        result = fit(cfg, progress=progress)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports the run
        return
    best = result.best_valid
    typer.echo(
        f"run {result.run_dir}: best epoch {result.best_epoch}, valid "
        + ", ".join(f"{k} {v:.4f}" for k, v in best.items())
        + f" ({result.epochs_run} epochs, {result.train_seconds:.0f}s training)"
    )


def _latest_run() -> Path:
    from recx.workspace import Workspace

    return Workspace.find().latest_run(finished=False)


train_command = user_errors(command(train, OPTIONS.values()))
