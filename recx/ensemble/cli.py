"""`recx ensemble`: weigh trained runs of one dataset into one ranker, chosen on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recx.errors import user_errors
from recx.options import dataset_option, device_option, force_option, out_option, quiet_option, run_option, seed_option


@user_errors
def ensemble_command(
    runs: Optional[list[Path]] = typer.Argument(None, help="Member run folders (trained on the same dataset); or --run RUN, repeated."),
    run: Optional[list[Path]] = run_option("A member run folder (repeatable; adds to the RUNS arguments)."),
    out: Path = out_option("Folder for the ensemble run (ensemble.json; `recx eval --run OUT` ranks it).", ...),
    method: str = typer.Option("greedy", "--select", help="greedy (selection with replacement on validation) or equal (plain average)."),
    metric: str = typer.Option("ndcg@10", "--metric", help="Validation metric the selection maximises: ndcg@K, hr@K or mrr."),
    rounds: int = typer.Option(25, "--rounds", help="Greedy picks at most; it stops earlier when no pick helps."),
    exclude_history: bool = typer.Option(False, "--exclude-history", help="Select under `recx eval --exclude-history` ranking."),
    max_users: int = typer.Option(50_000, "--max-users", help="Validation users read (a seeded sample when there are more)."),
    seed: int = seed_option(what="the validation users' sample (when there are more than --max-users)"),
    checkpoint: str = typer.Option("best.pt", "--checkpoint", help="Members' checkpoint file."),
    dataset: Optional[Path] = dataset_option("Dataset folder the members read instead of the one they recorded (the same data: a run refuses a changed one)."),
    device: str = device_option(),
    force: bool = force_option("an ensemble.json in --out (nothing else in the folder)"),
    quiet: bool = quiet_option(),
) -> None:
    """Choose member weights on the validation split (each member's scores divided by their
    spread first) and write OUT/ensemble.json. The ensemble ranks as one dot-product model, so
    `recx eval` and `recx recommend` take OUT like any run folder."""
    from rich.console import Console
    from rich.table import Table

    from recx.ensemble.run import EnsembleError, EnsembleOptions, build_ensemble

    members = list(runs or []) + list(run or [])
    if not members:
        raise EnsembleError("name the member runs: recx ensemble RUN RUN... --out DIR (or --run RUN --run RUN)")
    opts = EnsembleOptions(method, metric, rounds, exclude_history, max_users, checkpoint, seed)
    record = build_ensemble(members, out, opts, force=force, dataset=dataset, device=device)
    if not quiet:
        table = Table(title=f"{record['name']}: {method} selection on {record['selection']['users']:,} validation users")
        for col in ("member", "weight", f"valid {metric} alone"):
            member = col == "member"  # a run name may wrap; the numbers never do
            table.add_column(col, justify="left" if member else "right", overflow="fold", no_wrap=not member)
        for m in record["members"]:
            table.add_row(m["name"], f"{m['weight']:.3f}", f"{m[f'valid_{metric}']:.4f}")
        Console().print(table)
    print(f"ensemble valid {metric}: {record['selection']['value']:.4f}; wrote {Path(out) / 'ensemble.json'}")
