"""`recx study`: which item tower (and loss, and model) to train on this workspace's catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.options import DEFAULT_SEED, out_option, quiet_option
from recx.study.candidates import StudyError, candidates, default_towers, parse_list
from recx.trainer.config import LOSSES, MODELS, OPTIONS, TRACKERS


def parse_set(values: list[str] | None) -> dict[str, Any]:
    """``["epochs=60", "whiten=true"]`` -> ``{"epochs": 60, "whiten": True}``, typed by the option."""
    out: dict[str, Any] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        name = name.strip().removeprefix("--").replace("-", "_")
        spec = OPTIONS.get(name)
        if not sep or spec is None or isinstance(spec.default, dict):
            raise StudyError(f"--set {item!r}: expected OPTION=VALUE with a `recx train` option, e.g. --set epochs=60")
        try:
            if spec.type is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                out[name] = raw.lower() in ("true", "1")
            else:
                out[name] = spec.type(raw)
        except ValueError:
            raise StudyError(f"--set {item!r}: {raw!r} is not a valid {spec.type.__name__} for {spec.flag}") from None
    return out


def study(
    towers: Optional[str] = typer.Option(None, "--towers", help="Item towers, comma-separated. [default: id, each store's modality, and each fused with id]"),
    losses: str = typer.Option("debiased_ce", "--losses", help=f"Losses, comma-separated: {' | '.join(LOSSES)}."),
    models: str = typer.Option("sasrec", "--models", help=f"Models, comma-separated: {' | '.join(MODELS)}."),
    trials: int = typer.Option(20, "--trials", min=1, help="Finished trials (complete or pruned) per candidate's search."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Runs of each candidate's best trial (the trial itself is the first)."),
    budget_minutes: float = typer.Option(0.0, "--budget-minutes", min=0.0, help="Training minutes of the whole search, over all "
                                         "trials and workers, split evenly between candidates (0 = only --trials limits it)."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL shared by workers (e.g. postgresql://...). "
                                          "[default: sqlite:///<out>/study.db]"),
    worker: bool = typer.Option(False, "--worker", help="Only run trials (beside another `recx study` on the same storage), then exit."),
    fixed: Optional[list[str]] = typer.Option(None, "--set", help="OPTION=VALUE of `recx train` that every trial uses (repeatable); "
                                              "a fixed option is not searched."),
    log: str = typer.Option("none", "--log", help=f"Track every trial: {' | '.join(TRACKERS)}."),
    out: Optional[Path] = out_option("Study folder: storage, runs, results.json, report.md, report.html. [default: <workspace>/study]"),
    quiet: bool = quiet_option(),
) -> None:
    """Search, for every candidate (tower x loss x model), its hyper-parameters on validation NDCG@10,
    retrain each best trial with more seeds, test them on the full catalog and say which to use.
    Rerun the same command to continue an interrupted study."""
    from recx.study.plan import StudyPlan
    from recx.study.run import run_study
    from recx.study.storage import default_url
    from recx.trainer.cli import workspace_layer
    from recx.workspace import Workspace

    ws = Workspace.find()
    layer = workspace_layer()
    if log not in TRACKERS:
        raise StudyError(f"--log {log!r}: expected one of {', '.join(TRACKERS)}")
    chosen_towers = parse_list(towers, "towers") or default_towers(layer.get("stores", {}))
    cands = candidates(chosen_towers, parse_list(losses, "losses", LOSSES) or [], parse_list(models, "models", MODELS) or [])
    given = parse_set(fixed)
    seed = int(given.pop("seed", DEFAULT_SEED))
    folder = (out or ws.root / "study").resolve()
    plan = StudyPlan(cands, folder, storage or default_url(folder), layer, given, trials, seeds, budget_minutes, log, seed,
                     worker, progress=not quiet)
    results = run_study(plan)
    if results is None:
        typer.echo(f"worker done: trials of {len(cands)} candidate(s) in {plan.storage}")
        return
    typer.echo(results["verdict"])
    for pair in results["pairs"]:
        typer.echo("  " + pair["sentence"])
    typer.echo(f"wrote {folder / 'results.json'}, {folder / 'report.md'}, {folder / 'report.html'}")


study_command = user_errors(study)
