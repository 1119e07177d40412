"""`recx recommend` and `recx export`: thin wrappers over ``Recommender`` and ``export_run``.

Heavy imports live inside the functions so `recx --help` stays fast.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.options import dataset_option, device_option, force_option, out_option, quiet_option, run_option

FORMATS = ("table", "csv", "jsonl")


def _default_run(run: Path | None) -> Path:
    if run is not None:
        return run
    from recx.workspace import NoWorkspace, Workspace

    try:
        return Workspace.find().latest_run()
    except NoWorkspace as e:
        raise NoWorkspace(f"{e}; or pass --run RUN_DIR") from None


def read_user_file(path: Path) -> list[str]:
    """One user id per line; blank lines and lines starting with '#' are ignored."""
    from recx.inference.recommender import RecommendError

    if not path.is_file():
        raise RecommendError(f"{path}: no such file (--users expects one user id per line)")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [x for x in ids if x and not x.startswith("#")]
    if not ids:
        raise RecommendError(f"{path}: no user ids (one per line expected)")
    return ids


def print_recommendations(out: Any, fmt: str, stream=None) -> None:
    """Write a ``Recommendations`` as a table, CSV or JSON lines (one line per query)."""
    stream = stream or sys.stdout
    rows = list(out.rows())
    if fmt == "csv":
        w = csv.writer(stream)
        w.writerow(["query", "rank", "item_id", "score", "title"])
        for r in rows:
            w.writerow([r["query"], r["rank"], r["item_id"], f"{r['score']:.6g}", r["title"] or ""])
    elif fmt == "jsonl":
        for q, label in enumerate(out.queries):
            items = [{k: r[k] for k in ("rank", "item_id", "score", "title")} for r in rows if r["query"] == label]
            stream.write(json.dumps({"query": label, "items": items, "skipped": out.skipped.get(label, [])}, ensure_ascii=False) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False)
        for col, just in (("query", "left"), ("rank", "right"), ("item_id", "left"), ("score", "right"), ("title", "left")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for r in rows:
            table.add_row(r["query"] if r["rank"] == 1 else "", str(r["rank"]), r["item_id"], f"{r['score']:.4f}", r["title"] or "")
        Console(file=stream, width=160).print(table)


@user_errors
def recommend_command(
    run: Optional[Path] = run_option("Run folder. Default: the workspace's latest run."),
    export: Optional[Path] = typer.Option(None, "--export", help="Serve an export dir (from `recx export`) instead of a run."),
    dataset: Optional[Path] = dataset_option("With --run: read this dataset folder instead of the one the run recorded (the same data: "
                                             "a run refuses a changed one). With --export and --user: the dataset whose users to read "
                                             "(default: the one recorded in the export)."),
    device: str = device_option(),
    user: Optional[list[str]] = typer.Option(None, "--user", help="A user id of the dataset (repeatable); history = the user's whole sequence."),
    users: Optional[Path] = typer.Option(None, "--users", help="File of user ids, one per line."),
    history: Optional[list[str]] = typer.Option(None, "--history", help="Comma-separated item ids, oldest first (repeatable: one history each)."),
    similar_to: Optional[list[str]] = typer.Option(None, "--similar-to", help="An item id (repeatable): the items nearest to it."),
    k: int = typer.Option(10, "--k", help="Items per list."),
    exclude_history: bool = typer.Option(False, "--exclude-history", help="Leave the history's own items out of its list."),
    fmt: str = typer.Option("table", "--format", help="table, csv or jsonl."),
    index: str = typer.Option("flat", "--index", help="With --run: flat (exact), or an approximate ivf / hnsw index built on load. An export serves its own index."),
) -> None:
    """Top-K items, by original id with titles and scores, for users, histories or items.
    --device runs the user tower there."""
    from recx.inference.recommender import RecommendError, Recommender

    if fmt not in FORMATS:
        raise RecommendError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if k < 1:
        raise RecommendError(f"--k must be >= 1; got {k}")
    user_ids = list(user or []) + (read_user_file(users) if users else [])
    asked = [name for name, given in (("--user/--users", user_ids), ("--history", history), ("--similar-to", similar_to)) if given]
    if len(asked) != 1:
        raise RecommendError("give exactly one of --user ID / --users FILE, --history ID,ID,... or --similar-to ID" + (f" (got {' and '.join(asked)})" if asked else ""))
    if export is not None:
        if run is not None:
            raise RecommendError("give --run or --export, not both")
        if index != "flat":
            raise RecommendError("--index applies to --run; an export serves the index it was exported with")
        from recx.inference.export import load_export

        exported = load_export(export)
        ds_path = dataset or (Path(exported.manifest["dataset"]["path"]) if user_ids else None)
        rec = Recommender.from_exported(exported, ds_path, device)
    else:
        from recx.evaluate.retrieval import check_index_kind

        check_index_kind(index)
        rec = Recommender.from_run(_default_run(run), index=index, dataset=dataset, device=device)  # the index's default parameters
    if k > rec.catalog.num_items:
        from recx.errors import warn

        warn(f"--k {k} is more than the catalog's {rec.catalog.num_items} items; capped at {rec.catalog.num_items}")
        k = rec.catalog.num_items
    if user_ids:
        out = rec.recommend_users(user_ids, k, exclude_history)
    elif history:
        hists = [[x.strip() for x in h.split(",") if x.strip()] for h in history]
        out = rec.recommend(hists, k, exclude_history)
    else:
        out = rec.similar_items(list(similar_to or []), k)
    for msg in out.messages():
        typer.secho(f"warning: {msg}", fg="yellow", err=True)
    if not out.queries:
        raise RecommendError("nothing to recommend: every query was skipped (see the warnings above)")
    print_recommendations(out, fmt)


@user_errors
def export_command(
    run: Optional[Path] = run_option("Run folder. Default: the workspace's latest run."),
    out: Path = out_option("Export dir to create (must not exist unless --force).", ...),
    dataset: Optional[Path] = dataset_option("Dataset folder to read instead of the one the run recorded (the same data: a run refuses a changed one); "
                                             "the manifest records it."),
    device: str = device_option(),
    index: str = typer.Option("flat", "--index", help="FAISS index: flat (exact), ivf or hnsw (recall@K against exact measured on the test users)."),
    nlist: Optional[int] = typer.Option(None, "--nlist", help="IVF lists. Default: ~4*sqrt(N)."),
    nprobe: int = typer.Option(16, "--nprobe", help="IVF lists probed per query."),
    hnsw_m: int = typer.Option(32, "--hnsw-m", help="HNSW graph degree M."),
    ef_construction: int = typer.Option(200, "--ef-construction", help="HNSW efConstruction."),
    ef_search: int = typer.Option(128, "--ef-search", help="HNSW efSearch."),
    k: int = typer.Option(10, "--k", help="K of the recall@K and top-K checks."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Also write user_encoder.onnx where the onnx package is installed."),
    force: bool = force_option("an export dir recx wrote (only once the new one is complete)"),
    quiet: bool = quiet_option(),
) -> None:
    """Write item vectors (.npy + H5 store), a FAISS index, the TorchScript user encoder and
    manifest.json for a run, atomically. --device runs the trained model's checks there (the
    exported encoder is saved for the CPU)."""
    from recx.evaluate.retrieval import index_params
    from recx.inference.export import export_run

    run_dir = _default_run(run)
    manifest = export_run(run_dir, out, index, index_params(index, nlist, nprobe, hnsw_m, ef_construction, ef_search), k, force=force, onnx=onnx,
                          dataset=dataset, device=device)
    enc, idx = manifest["user_encoder"], manifest["index"]
    typer.echo(f"exported {manifest['run']['name']} ({manifest['dataset']['num_items']} items, dim {manifest['dim']}) -> {out}")
    if quiet:
        return
    typer.echo(f"  files: {', '.join(manifest['files'])}")
    check = enc["check"]
    if check["same_topk_fraction"] is not None:
        typer.echo(f"  user encoder: TorchScript top-{check['k']} equals the trained model's for {check['same_topk_fraction']:.2%} of {check['users']} test users")
    typer.echo(f"  onnx: {'written' if enc['onnx']['written'] else 'not written (' + enc['onnx']['reason'] + ')'}")
    recall = idx.get(f"recall@{idx.get('k')}")
    typer.echo(f"  index: {idx['kind']} {idx.get('params') or ''}" + (f", recall@{idx['k']} vs exact {recall:.4f} over {idx['recall_queries']} test users" if recall is not None else ""))
