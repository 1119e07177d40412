"""`recx eval`: rank the full catalog for one or more runs, print the table, write results.json.

The command only resolves run folders and options; ``recx.evalrun.compare.evaluate_models``
does the work on already-loaded embeddings, so it can be driven (and tested) from arrays.
Heavy imports live inside the functions so `recx --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from recx.errors import user_errors
from recx.options import dataset_option, device_option, quiet_option, run_option, seed_option


def _resolve_runs(runs: Sequence[Path] | None, compare: Sequence[Path] | None) -> tuple[list[Path], Any]:
    from recx.evaluate.protocol import EvalError
    from recx.workspace import NoWorkspace, Workspace

    try:
        ws: Any = Workspace.find()
    except NoWorkspace:
        ws = None
    if compare:
        if runs:
            raise EvalError("give runs either with --run or with --compare, not both")
        return [Path(p) for p in compare], ws
    if runs:
        return [Path(p) for p in runs], ws
    if ws is None:
        raise EvalError("no recx.toml here or in a parent folder: pass --run RUN_DIR or work inside a workspace")
    return [ws.latest_run()], ws


def capped_ks(ks: Sequence[int], num_items: int) -> tuple[int, ...]:
    """The cut-offs, each capped at the catalog size (saying so), without repeats."""
    from recx.errors import warn
    from recx.evaluate.protocol import EvalError

    if any(x < 1 for x in ks):
        raise EvalError(f"--k must be >= 1; got {', '.join(str(x) for x in ks if x < 1)}")
    for x in ks:
        if x > num_items:
            warn(f"--k {x} is more than the catalog's {num_items} items; capped at {num_items} (every item is in the list)")
    return tuple(dict.fromkeys(min(x, num_items) for x in ks))


@user_errors
def eval_command(
    run: Optional[list[Path]] = run_option("Run folder to evaluate (repeatable). Default: the workspace's latest run."),
    dataset: Optional[Path] = dataset_option("Dataset folder to evaluate on instead of the one each run recorded (the same data, e.g. a moved copy: a run refuses a changed dataset)."),
    split: str = typer.Option("test", "--split", help="valid or test."),
    k: Optional[list[int]] = typer.Option(None, "--k", help="Cut-off K (repeatable). Default: recx.toml [eval] k, else 10."),
    exclude_history: bool = typer.Option(False, "--exclude-history", help="Remove each user's own past items from the ranking."),
    ties: str = typer.Option("pessimistic", "--ties", help="pessimistic (tied items rank above the target) or expected (half of them)."),
    index: str = typer.Option("flat", "--index", help="flat (exact), or approximate ivf / hnsw (reported next to the exact metrics, with their recall@K)."),
    nlist: Optional[int] = typer.Option(None, "--nlist", help="IVF lists. Default: ~4*sqrt(N)."),
    nprobe: int = typer.Option(16, "--nprobe", help="IVF lists probed per query."),
    hnsw_m: int = typer.Option(32, "--hnsw-m", help="HNSW graph degree M."),
    ef_construction: int = typer.Option(200, "--ef-construction", help="HNSW efConstruction."),
    ef_search: int = typer.Option(128, "--ef-search", help="HNSW efSearch."),
    device: str = device_option(),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for 95% CIs (0: none)."),
    seed: int = seed_option(what="the bootstrap and permutation resampling"),
    per_user: Optional[Path] = typer.Option(None, "--per-user", help="Write per-user ranks and metrics to this CSV."),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, "--compare", help="RUN_A RUN_B: paired test of B against A."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a metric-vs-K chart (PNG)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Add the random and popularity rows."),
    quiet: bool = quiet_option(),
) -> None:
    """Rank the full catalog for the latest run (or --run DIRS), print the metrics table and
    write results.json into each run folder. --device runs the user tower and the ranking there."""
    from recx.evalrun.compare import EvalOptions, ModelInput, evaluate_models
    from recx.evalrun.runs import load_embeddings, run_name
    from recx.evaluate.protocol import EvalError

    if split not in ("valid", "test"):
        raise EvalError(f"--split must be valid or test; got {split!r}")
    compare_runs = [p for p in compare] if compare and all(p is not None for p in compare) else None
    run_dirs, ws = _resolve_runs(run, compare_runs)
    if not k:
        k = list((ws.section("eval").get("k") if ws is not None else None) or [10])
    from recx.evaluate.retrieval import index_params

    params = index_params(index, nlist, nprobe, hnsw_m, ef_construction, ef_search)
    embs = [load_embeddings(d, split, dataset, device) for d in run_dirs]
    ks = capped_ks([int(x) for x in k], min(e.item_table.shape[0] - 1 for e in embs))
    opts = EvalOptions(split, ks, exclude_history, ties, index, params, device, bootstrap, seed, baselines)
    names = [run_name(d, getattr(e, "config", None)) for d, e in zip(run_dirs, embs)]
    if len(set(names)) < len(names):  # two runs of the same config: fall back to folder names
        names = [d.resolve().name for d in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{d.resolve().parent.name}/{d.resolve().name}" for d in run_dirs]
    models = [ModelInput(n, e, d) for n, e, d in zip(names, embs, run_dirs)]
    evaluate_models(models, opts, compare=compare_runs is not None, per_user=per_user, plot=plot, quiet=quiet)
