"""`recx ensemble`: weigh trained runs of one dataset into one ranker, chosen on validation."""

from __future__ import annotations

from pathlib import Path

import typer

from recx.errors import user_errors


@user_errors
def ensemble_command(
    runs: list[Path] = typer.Argument(..., help="Member run folders (trained on the same dataset)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the ensemble run (ensemble.json; `recx eval --run OUT` ranks it)."),
    method: str = typer.Option("greedy", "--select", help="greedy (selection with replacement on validation) or equal (plain average)."),
    metric: str = typer.Option("ndcg@10", "--metric", help="Validation metric the selection maximises: ndcg@K, hr@K or mrr."),
    rounds: int = typer.Option(25, "--rounds", help="Greedy picks at most; it stops earlier when no pick helps."),
    exclude_history: bool = typer.Option(False, "--exclude-history", help="Select under `recx eval --exclude-history` ranking."),
    max_users: int = typer.Option(50_000, "--max-users", help="Validation users read (a seeded sample when there are more)."),
    checkpoint: str = typer.Option("best.pt", "--checkpoint", help="Members' checkpoint file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing ensemble.json in --out."),
) -> None:
    """Choose member weights on the validation split (each member's scores divided by their
    spread first) and write OUT/ensemble.json. The ensemble ranks as one dot-product model, so
    `recx eval` and `recx recommend` take OUT like any run folder."""
    from rich.console import Console
    from rich.table import Table

    from recx.ensemble.run import EnsembleOptions, build_ensemble

    opts = EnsembleOptions(method, metric, rounds, exclude_history, max_users, checkpoint)
    record = build_ensemble(runs, out, opts, overwrite=overwrite)
    table = Table(title=f"{record['name']}: {method} selection on {record['selection']['users']:,} validation users")
    for col in ("member", "weight", f"valid {metric} alone"):
        member = col == "member"  # a run name may wrap; the numbers never do
        table.add_column(col, justify="left" if member else "right", overflow="fold", no_wrap=not member)
    for m in record["members"]:
        table.add_row(m["name"], f"{m['weight']:.3f}", f"{m[f'valid_{metric}']:.4f}")
    Console().print(table)
    print(f"ensemble valid {metric}: {record['selection']['value']:.4f}; wrote {Path(out) / 'ensemble.json'}")
