"""`recx data ...`: synthesize, import and describe datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from recx.errors import user_errors
from recx.options import force_option, out_option, quiet_option, seed_option

if TYPE_CHECKING:
    from recx.data.dataset import SequenceDataset

app = typer.Typer(help="Import, synthesize and describe datasets.", no_args_is_help=True)


def _finish(ds: "SequenceDataset", workspace: Optional[Path], quiet: bool = False) -> None:
    """Point the workspace at the new dataset and print its summary (``quiet``: its headline only)."""
    from recx.workspace import CONFIG_NAME, Workspace

    root = workspace or Path.cwd()
    ws = Workspace.init(root, ds.path, has_text=bool(ds.has_text().any()))
    for line in summary_lines(ds)[:1] if quiet else summary_lines(ds):
        typer.echo(line)
    typer.echo(f"wrote {ds.path}; {ws.root / CONFIG_NAME} now points at it")


def summary_lines(ds: "SequenceDataset") -> list[str]:
    """What a new dataset prints: first its own counts (the line to check against a paper), then
    for an import the columns it chose and where the input rows went, then the full description."""
    from recx.data.info import describe, format_info, headline

    info = describe(ds)
    return [headline(info), *_import_lines(ds.meta), format_info(info)]


def _import_lines(meta: dict) -> list[str]:
    from recx.data.importers.columns import columns_line
    from recx.data.importers.pipeline import Ledger

    rec = meta.get("import")
    if rec is None:
        return []
    columns = (meta.get("source") or {}).get("columns")
    led = Ledger(files=dict(rec.get("files", {})))
    led.outcomes.update(rec.get("rows", {}))
    led.warnings.update(rec.get("warnings", {}))
    return ([columns_line(columns)] if columns else []) + led.lines()


@app.command("synth")
@user_errors
def synth_command(
    out: Path = out_option("Dataset directory to create.", Path("data")),
    items: int = typer.Option(2000, "--items", help="Catalog size."),
    users: int = typer.Option(1000, "--users", help="Number of users."),
    seed: int = seed_option(what="the dataset (the same seed gives the same dataset)"),
    image_size: int = typer.Option(64, "--image-size", help="Side of the generated PNG images."),
    force: bool = force_option("a dataset directory recx wrote"),
    workspace: Optional[Path] = typer.Option(None, "--workspace", help="Workspace folder for recx.toml", show_default="current folder"),
    quiet: bool = quiet_option(),
) -> None:
    """Generate a synthetic multimodal catalog (text + images) with attribute-driven users."""
    from recx.data.synth import synthesize

    ds = synthesize(out, num_items=items, num_users=users, seed=seed, force=force, image_size=image_size, progress=not quiet)
    _finish(ds, workspace, quiet)


@app.command("import")
@user_errors
def import_command(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="unisrec | rechorus | recbole | movielens | hm | mind | amazon | amazon18 | csv."),
    src: Path = typer.Argument(..., help="Source folder (amazon, csv: the interactions file)."),
    out: Path = out_option("Dataset directory to create.", Path("data")),
    force: bool = force_option("a dataset directory recx wrote"),
    workspace: Optional[Path] = typer.Option(None, "--workspace", help="Workspace folder for recx.toml", show_default="current folder"),
    k_core: Optional[int] = typer.Option(None, "--k-core", help="Drop users and items with fewer interactions, to a fixed point", show_default="0, off"),
    min_length: Optional[int] = typer.Option(None, "--min-length", help="Drop users with shorter sequences; never below 3", show_default="3"),
    dedup: Optional[str] = typer.Option(None, "--dedup", help="exact (drop rows repeating user, item and time) | none (keep every row) | consecutive (drop repeats of the previous item)", show_default="exact; mind: none"),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Keep each user's most recent N interactions (items per history)", show_default="0, all"),
    text_fields: Optional[str] = typer.Option(None, "--text-fields", help="Comma-separated metadata fields joined into the item text", show_default="per format"),
    text_template: Optional[str] = typer.Option(None, "--text-template", help="Python format string over the text fields, e.g. '{title} by {brand}'."),
    items: Optional[Path] = typer.Option(None, "--items", help="amazon: metadata file; csv: items file."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image folder", show_default="movielens SRC/posters, hm SRC/images"),
    tmdb: Optional[Path] = typer.Option(None, "--tmdb", help="movielens: csv with movie_id, overview", show_default="SRC/items_tmdb.csv if present"),
    min_rating: Optional[float] = typer.Option(None, "--min-rating", help="movielens, recbole: drop ratings below this", show_default="keep all"),
    name: Optional[str] = typer.Option(None, "--name", help="unisrec, recbole, amazon18: dataset prefix X when SRC holds several."),
    max_history: Optional[int] = typer.Option(None, "--max-history", help="unisrec: history cut-off in the files", show_default="the longest found"),
    user_col: Optional[str] = typer.Option(None, "--user-col", help="csv, recbole: user column", show_default="first found of user_id, user, userId, customer_id, reviewerID, ... (any case)"),
    item_col: Optional[str] = typer.Option(None, "--item-col", help="csv, recbole: item column", show_default="first found of item_id, item, itemId, movieId, asin, article_id, ... (any case)"),
    time_col: Optional[str] = typer.Option(None, "--time-col", help="csv, recbole: time column", show_default="first found of timestamp, time, ts, unixReviewTime, t_dat, ...; file order if none"),
    time_format: Optional[str] = typer.Option(None, "--time-format", help="csv, recbole: strptime format for dates, e.g. %Y-%m-%d", show_default="numeric seconds"),
    sep: Optional[str] = typer.Option(None, "--sep", help="csv: field separator, '\\t' for tabs", show_default="','"),
    image_col: Optional[str] = typer.Option(None, "--image-col", help="csv: items-file column with image paths (relative to --images)."),
    quiet: bool = quiet_option(),
) -> None:
    """Import a dataset from its original files; prints where every input row went (--quiet:
    the dataset's headline only)."""
    from recx.data.importers import import_dataset

    ds = import_dataset(
        fmt, src, out, force=force, k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_len,
        text_fields=text_fields, text_template=text_template, items=items, images=images, tmdb=tmdb,
        min_rating=min_rating, name=name, max_history=max_history, user_col=user_col, item_col=item_col,
        time_col=time_col, time_format=time_format, sep=sep, image_col=image_col,
    )
    _finish(ds, workspace, quiet)


@app.command("info")
@user_errors
def info_command(
    path: Path = typer.Argument(..., help="Dataset directory."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG with the length and popularity distributions."),
) -> None:
    """Users, items, interactions, sequence lengths, modality coverage, popularity skew."""
    from recx.data.dataset import SequenceDataset
    from recx.data.info import describe, format_info, plot_info

    ds = SequenceDataset(path)
    typer.echo(format_info(describe(ds)))
    if plot is not None:
        typer.echo(f"plot: {plot_info(ds, plot)}")
