"""`recx quickstart`: the whole pipeline on the built-in synthetic catalog, in a few minutes.

synth -> featurize (all-MiniLM-L6-v2) -> train ID-SASRec and text-SASRec (debiased CE) ->
evaluate both against a popularity baseline on the full catalog -> one side-by-side table.

Every step is reused when its artifact already exists (the dataset, the store, a finished
run), so an interrupted quickstart picks up where it stopped; ``--force`` starts over.  It ends
by printing next steps: commands that each work when pasted in the folder (tested).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

from recx.errors import user_errors
from recx.options import DEFAULT_SEED, force_option, out_option, quiet_option, seed_option


MARKER_TEXT = "made by `recx quickstart`; `recx quickstart --force` may empty this folder\n"


def _claim(root: Path, force: bool) -> None:
    """Make ``root`` the quickstart folder: created new, reused (resume) or, with ``force``,
    emptied, but only if an earlier quickstart made it and it holds nothing else."""
    from recx.artifacts import QUICKSTART, check_replaceable

    marker = root / QUICKSTART.marker
    names = {p.name for p in root.iterdir()} if root.is_dir() else set()
    made_by_quickstart = marker.exists() or names <= QUICKSTART.members  # folders from before the marker have none
    if (names and not made_by_quickstart) or (force and not names <= QUICKSTART.members):
        check_replaceable(root, QUICKSTART, force, option="--out")  # raises, naming what is not ours
    if force:
        for name in (names & QUICKSTART.members) - {QUICKSTART.marker}:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(MARKER_TEXT, encoding="utf-8")


def _step(title: str, quiet: bool = False) -> float:
    if not quiet:
        typer.secho(f"\n== {title}", bold=True)
    return time.perf_counter()


def next_steps(epochs: int, user_id: str) -> list[str]:
    """Commands to try next in the quickstart folder; each does new work, so each works when pasted."""
    import shlex

    return [
        f"recx train --item-tower id+text --loss debiased_ce --epochs {epochs} --name id-text",  # ID + text fusion on the same store
        "recx eval --run runs/id-text --k 10 --k 20",
        "recx eval --compare runs/id runs/id-text --k 10",
        f"recx recommend --run runs/text --user {shlex.quote(user_id)} --k 10",
        "recx export --run runs/text --out export",
    ]


@user_errors
def quickstart_command(
    directory: Path = out_option("Workspace folder to create (or reuse).", Path("recx-demo")),
    items: int = typer.Option(2000, "--items", help="Synthetic catalog size."),
    users: int = typer.Option(1000, "--users", help="Synthetic users."),
    epochs: int = typer.Option(40, "--epochs", help="Maximum training epochs per model (early stopping usually ends sooner)."),
    model: str = typer.Option("minilm", "--model", help="Text encoder for the text tower (`recx models`)."),
    seed: int = seed_option(what="the catalog and of training"),
    force: bool = force_option("what an earlier quickstart wrote in the folder (start over)"),
    quiet: bool = quiet_option(),
) -> None:
    """Synthesize a catalog, featurize it, train ID and text SASRec, and compare them."""
    run_quickstart(directory, items, users, epochs, model, seed, force, progress=not quiet, quiet=quiet)


def run_quickstart(directory: Path, items: int = 2000, users: int = 1000, epochs: int = 40, model: str = "minilm", seed: int = DEFAULT_SEED,
                   force: bool = False, progress: bool = True, quiet: bool = False) -> dict:
    """The quickstart; ``quiet``: no step headers or progress, only the results table and the next steps."""
    from rich.console import Console

    from recx.data.dataset import SequenceDataset
    from recx.data.synth import synthesize
    from recx.evalrun.compare import EvalOptions, ModelInput, evaluate_models
    from recx.featurize import run as featurize
    from recx.trainer import TrainConfig, fit
    from recx.inference.run import export_embeddings
    from recx.workspace import Workspace

    start = time.perf_counter()
    root = directory.resolve()
    _claim(root, force)
    data_dir = root / "data"

    def say(line: str) -> None:
        if not quiet:
            typer.echo(line)

    t = _step(f"1/4 synthetic catalog: {items} items, {users} users -> {data_dir}", quiet)
    if (data_dir / "dataset.json").is_file():
        dataset = SequenceDataset(data_dir)
        say(f"reusing {dataset}")
    else:
        dataset = synthesize(data_dir, num_items=items, num_users=users, seed=seed, progress=progress)
    ws = Workspace.init(root, data_dir, has_text=True)
    say(f"{dataset.num_users} users, {dataset.num_items} items, {len(dataset.items)} interactions ({time.perf_counter() - t:.1f}s)")

    t = _step(f"2/4 featurize item texts with {model}", quiet)
    store = ws.stores_dir / f"{model}.h5"
    if not store.is_file():
        store = featurize(data_dir, model=model, out=store, progress=progress)
    ws.record_store("text", store)
    say(f"{store} ({time.perf_counter() - t:.1f}s)")

    runs = {}
    for label, tower in (("ID-SASRec", "id"), ("Text-SASRec", "text")):
        t = _step(f"3/4 train {label} (item tower {tower}, debiased CE)", quiet)
        cfg = TrainConfig.from_options(
            dataset=str(data_dir), stores={"text": str(store)} if tower == "text" else {}, item_tower=tower,
            loss="debiased_ce", epochs=epochs, patience=5, dropout=0.2, batch_size=64, seed=seed, name=tower, runs_dir=str(ws.runs_dir),
        )
        run_dir = ws.runs_dir / tower
        if (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file():
            fit(cfg, run_dir=run_dir, resume=True, progress=progress)  # finishes an interrupted run; no-op if done
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            fit(cfg, progress=progress)
        runs[label] = run_dir
        say(f"{run_dir} ({time.perf_counter() - t:.1f}s)")

    _step("4/4 full-catalog evaluation on the test split", quiet)
    models = [ModelInput(label, export_embeddings(run_dir, "test"), run_dir) for label, run_dir in runs.items()]
    out = evaluate_models(models, EvalOptions(ks=(10, 20), n_boot=500, seed=seed), console=Console(), quiet=quiet)
    typer.secho(f"\nquickstart finished in {time.perf_counter() - start:.0f}s; workspace: {root}", bold=True)
    # every command does new work (the store and both runs exist: featurize again would need --force)
    typer.echo(f"next, in {directory}:")
    for command in next_steps(epochs, dataset.user_ids[0]):
        typer.echo(f"  {command}")
    return out
