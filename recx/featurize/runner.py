"""`recx.featurize.run`: every item of a dataset through an encoder, into a resumable H5 store.

The plan: every present item of the catalog sorted by (cost, row) (cost = the encoder's
``sort_keys``, e.g. token count; row order for encoders without one), cut into batches of
``batch_size``, and consecutive batches grouped into work chunks of ``chunk_rows // batch_size``
batches (at least one), so a chunk holds about ``chunk_rows`` items.  Sorting the whole catalog
keeps padding short (similar lengths share a batch however the rows are ordered); each chunk
is written to the store as one unit, its rows scattered over the file, and the store counts
the items written in plan order, so an interrupted run recomputes the plan and resumes after
the last finished chunk.  The plan is a pure function of the dataset, the encoder,
``batch_size`` and ``chunk_rows``, so a resumed or a multi-process run computes exactly the
same batches as a single uninterrupted one.

Image files are decoded in DataLoader workers one by one: a broken file (PIL cannot decode it)
does not stop the run; its item is written as absent, still counting as done so resuming stays
exact, and listed in ``<store>.broken-images.txt`` (``--strict-images`` makes it an error).  A
store with no present item is refused before it is opened, and one covering under half of the
items the dataset counts with the modality is written with a warning.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

import recx
from recx import device as devices
from recx.data.dataset import SequenceDataset
from recx.distributed import join
from recx.errors import RecxError, warn
from recx.featurize.base import Encoder, encode_batch
from recx.featurize.image import ImageDecodeError
from recx.featurize.registry import REGISTRY, load_encoder, store_name
from recx.featurize.store import StoreError, StoreWriter, check_replaceable_store, partial_path

# below this per-item cosine to the float32 output, reduced precision is not used
MIN_COSINE = 0.999
# the command vocabulary's --precision names -> the compute dtype names the store records
COMPUTE_DTYPES = {"auto": "auto", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEFAULT_BATCH = {"text": 128, "image": 64}


# items per sort_keys call while planning (bounds the tokenizer output held at once)
_SORT_SLICE = 8192
BROKEN_LIST_SUFFIX = ".broken-images.txt"


class NoItemsError(RecxError):
    """No item of the dataset has a usable input for the modality; the message names the dataset."""


@dataclass
class Chunk:
    """One work chunk of the plan: consecutive batches of row indices, from plan position ``start``."""

    start: int
    batches: list[np.ndarray]

    @property
    def stop(self) -> int:
        """Plan position after the chunk (the store's ``rows_done`` once it is written)."""
        return self.start + sum(len(b) for b in self.batches)

    @property
    def rows(self) -> np.ndarray:
        return np.concatenate(self.batches)


def default_store_path(dataset_dir: str | os.PathLike, model: str, modality: str | None = None) -> Path:
    """``<dataset dir's parent>/stores/<model>[-<modality>].h5``."""
    suffix = f"-{modality}" if modality else ""
    return Path(dataset_dir).resolve().parent / "stores" / f"{store_name(model)}{suffix}.h5"


def broken_list_path(store: str | os.PathLike) -> Path:
    """``<store>.broken-images.txt``: the items whose image file could not be decoded."""
    p = Path(store)
    return p.with_name(p.name + BROKEN_LIST_SUFFIX)


def item_inputs(dataset: SequenceDataset, modality: str) -> tuple[list[Any], np.ndarray]:
    """Raw inputs per row (texts or image paths, None where absent) and present [N+1] bool.

    An image path whose file is missing counts as absent (a missing modality, not an error).
    """
    if modality == "text":
        raw = [t if t else None for t in dataset.texts]
    elif modality == "image":
        raw = [p if p is not None and os.path.isfile(p) else None for p in dataset.image_paths]
    else:
        raise ValueError(f"unknown modality {modality!r}")
    present = np.array([r is not None for r in raw], dtype=bool)
    present[0] = False
    return raw, present


def _missing_images_note(dataset: SequenceDataset, missing: Sequence[str]) -> str:
    """Where the ``missing`` image files (at least one path) were looked for, in a few words."""
    root = dataset.image_root
    if not root.is_dir():
        return f"image root {root} does not exist"
    folders = {os.path.dirname(p) for p in missing}
    if len(folders) == 1 and not os.path.isdir(next(iter(folders))):
        return f"image folder {folders.pop()} does not exist; image root {root}"
    return f"image root {root}; e.g. {missing[0]} is missing"


def _missing_images(dataset: SequenceDataset, raw: Sequence[Any]) -> list[str]:
    """Image paths of items whose file was not found (``raw`` from :func:`item_inputs`)."""
    return [p for p, r in zip(dataset.image_paths, raw) if p is not None and r is None]


def require_items(dataset: SequenceDataset, modality: str, raw: Sequence[Any], present: np.ndarray) -> None:
    """Refuse a store that would hold no present item: NoItemsError naming the dataset (and where images were looked for)."""
    if present.any():
        return
    if modality == "text":
        raise NoItemsError(f"{dataset.path}: no item has a text; a text store would be empty")
    missing = _missing_images(dataset, raw)
    if not missing:
        raise NoItemsError(f"{dataset.path}: no item has an image path; an image store would be empty")
    raise NoItemsError(f"{dataset.path}: none of the {len(missing):,} items with an image path has a readable file "
                       f"({_missing_images_note(dataset, missing)}); restore the images, then rerun")


def checked_inputs(dataset: SequenceDataset, modality: str) -> tuple[list[Any], np.ndarray]:
    """:func:`item_inputs`, refused by :func:`require_items` when no item is present."""
    raw, present = item_inputs(dataset, modality)
    require_items(dataset, modality, raw, present)
    return raw, present


def _registry_modality(model: str, modality: str | None) -> str | None:
    """The modality a registry model encodes, known before loading it (None for folders and hub ids)."""
    spec = REGISTRY.get(model)
    if spec is None:
        return None
    if spec.modality == "clip":
        return modality or "image"
    return spec.modality if spec.modality in ("text", "image") else None


def plan_order(encoder: Encoder, raw: Sequence[Any], present: np.ndarray) -> np.ndarray:
    """Every present row, sorted by (``encoder.sort_keys`` cost, row) over the whole catalog (row order without keys)."""
    rows = np.flatnonzero(present)
    keys: list[int] | None = []
    for i in range(0, len(rows), _SORT_SLICE):
        part = encoder.sort_keys([raw[r] for r in rows[i : i + _SORT_SLICE]])
        if part is None:
            keys = None
            break
        keys.extend(part)
    if keys is not None and len(rows):
        rows = rows[np.lexsort((rows, np.asarray(keys)))]
    return rows


def plan_chunks(encoder: Encoder, raw: Sequence[Any], present: np.ndarray, batch_size: int, chunk_rows: int) -> list[Chunk]:
    """The plan: :func:`plan_order` cut into batches of ``batch_size``, grouped ``max(1, chunk_rows // batch_size)`` to a chunk."""
    order = plan_order(encoder, raw, present)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    per_chunk = max(1, chunk_rows // batch_size)
    return [Chunk(i * batch_size, batches[i : i + per_chunk]) for i in range(0, len(batches), per_chunk)]


def preprocess_items(encoder: Encoder, raw_items: Sequence[Any]) -> tuple[dict[str, torch.Tensor] | None, list[str | None]]:
    """Raw items -> (the batch of those that preprocess, None if none does; per item its fault in one line or None).

    A batch holding a broken image file is redone one image at a time, so the broken one leaves
    the others in the batch and never raises (in a DataLoader worker that would stop the run with
    a worker traceback); the usual batch, with no broken file, is preprocessed in one call.
    """
    try:
        return encoder.preprocess(list(raw_items)), [None] * len(raw_items)
    except ImageDecodeError:
        pass
    parts: list[dict[str, torch.Tensor]] = []
    faults: list[str | None] = []
    for item in raw_items:
        try:
            parts.append(encoder.preprocess([item]))
            faults.append(None)
        except ImageDecodeError as e:
            faults.append(e.reason or str(e))
    if not parts:
        return None, faults
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, faults


class _Batches(torch.utils.data.Dataset):
    """Batch i of the plan, preprocessed by :func:`preprocess_items` (in a DataLoader worker for images)."""

    def __init__(self, encoder: Encoder, raw: Sequence[Any], batches: list[np.ndarray]):
        self.encoder = encoder
        self.raw = raw
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor] | None, list[str | None]]:
        return preprocess_items(self.encoder, [self.raw[r] for r in self.batches[i]])


def _identity(x: Any) -> Any:
    return x


def compute_dtype_of(name: str) -> str:
    """``auto`` or a compute dtype name (float32, bfloat16, float16) for a --precision name
    (auto, fp32, bf16, fp16) or a dtype name."""
    if name in COMPUTE_DTYPES:
        return COMPUTE_DTYPES[name]
    if name in COMPUTE_DTYPES.values():
        return name
    raise RecxError(f"--precision {name!r}: expected one of {', '.join(COMPUTE_DTYPES)}")


def precision_name(compute_dtype: Any) -> str:
    """The --precision name of a recorded compute dtype (float32 -> fp32), else the value as it is."""
    return {v: k for k, v in COMPUTE_DTYPES.items()}.get(str(compute_dtype), str(compute_dtype))


def choose_compute_dtype(encoder: Encoder, batch: dict[str, torch.Tensor], device: torch.device, requested: str) -> tuple[str, float]:
    """Reduced precision if every item of ``batch`` keeps cosine > 0.999 to float32 and it is faster.

    ``auto`` tries bf16 on CPUs with native bf16 and fp16 then bf16 on GPUs; an explicit dtype is
    tried whatever the hardware.  Returns (dtype name, smallest per-item cosine; 1.0 for float32).
    """
    if requested == "float32":
        return "float32", 1.0
    if requested == "auto":
        if device.type == "cpu":
            candidates = ["bfloat16"] if devices.cpu_has_fast_bf16() else []
        else:
            candidates = ["float16", "bfloat16"]
    else:
        candidates = [requested]
    if not candidates:
        return "float32", 1.0
    start = time.perf_counter()
    ref = torch.from_numpy(encode_batch(encoder, batch, device, "float32"))
    ref_time = time.perf_counter() - start
    for cand in candidates:
        try:
            start = time.perf_counter()
            low = torch.from_numpy(encode_batch(encoder, batch, device, cand))
            low_time = time.perf_counter() - start
        except RuntimeError:  # autocast dtype unsupported on this device
            continue
        cos = torch.nn.functional.cosine_similarity(ref, low, dim=-1, eps=1e-12)
        # all-zero outputs (possible in tiny random models) are equal, not dissimilar
        both_zero = (ref.norm(dim=-1) == 0) & (low.norm(dim=-1) == 0)
        cos = torch.where(both_zero, torch.ones_like(cos), cos)
        worst = float(cos.min())
        faster = requested != "auto" or low_time < ref_time
        if bool(torch.isfinite(low).all()) and worst > MIN_COSINE and faster:
            return cand, worst
    return "float32", 1.0


def run(
    dataset_dir: str | os.PathLike,
    model: str = "minilm",
    out: str | os.PathLike | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str = "float16",
    force: bool = False,
    resume: bool = True,
    model_path: str | os.PathLike | None = None,
    pooling: str | None = None,
    layer: int | None = None,
    max_length: int | None = None,
    progress: bool = True,
    modality: str | None = None,
    compute_dtype: str = "auto",
    chunk_rows: int = 1024,
    num_workers: int | None = None,
    cache_top_k: int = 0,
    encoder: Encoder | None = None,
    on_chunk: Callable[[int], None] | None = None,
    offline: bool | None = None,
    strict_images: bool = False,
) -> Path:
    """Encode every item of ``dataset_dir`` with ``model`` into an H5 store; returns its path.

    Args:
        model: registry name (``recx models``), local model folder or hub id.
        out: store path (default ``<dataset parent>/stores/<model>.h5``).
        batch_size: items per forward pass (default 128 for text, 64 for images).
        device: ``auto`` (cuda if present), ``cpu``, ``cuda``, ``cuda:1``...
        dtype: storage dtype, ``float16`` or ``float32``.
        force: replace a finished store at ``out``.
        resume: continue an interrupted run from its last finished chunk.
        modality: CLIP models only: ``image`` or ``text``.
        compute_dtype: ``auto`` (bf16 on CPUs with native bf16, fp16 on GPU, when faster and every calibration item keeps
            cosine > 0.999 to float32), ``float32``, ``bfloat16`` or ``float16``; the --precision names
            ``fp32``, ``bf16``, ``fp16`` are accepted too.  The store records the dtype name.
        chunk_rows: items per work chunk (the resume granularity), rounded down to whole batches (at least one).
        num_workers: DataLoader workers for image decoding (default: min(4, CPU count)).
        cache_top_k: also store the hidden states entering the top K blocks (transformers; CNN stages as H*W tokens).
        encoder: an already-built Encoder (then ``model`` only names the store).
        on_chunk: called with the store's ``rows_done`` (items written, in plan order) after each chunk is flushed.
        offline: never download weights (also on with ``HF_HUB_OFFLINE=1``); by default weights not on this
            machine are downloaded into their library's cache before the store is opened, so a failed
            download leaves no store behind.
        strict_images: a broken image file is an error (ImageDecodeError naming it) instead of an
            absent item listed in ``<out>.broken-images.txt``.

    Raises NoItemsError (before any store is written) when no item has a usable input.
    """
    compute_dtype = compute_dtype_of(compute_dtype)
    dataset = SequenceDataset(dataset_dir)
    ctx = join(device)
    if out is None:
        spec = REGISTRY.get(model)
        suffix = modality if spec is not None and spec.modality == "clip" else None
        out = default_store_path(dataset_dir, model, suffix)
    out = Path(out)
    check_replaceable_store(out, force)  # before any weight is loaded (StoreWriter checks again)

    known = encoder.modality if encoder is not None else _registry_modality(model, modality)
    inputs = checked_inputs(dataset, known) if known else None  # before weights are loaded (or downloaded)

    device_t = ctx.device
    if encoder is None:
        def load() -> Encoder:
            return load_encoder(model, model_path=model_path, pooling=pooling, layer=layer, max_length=max_length,
                                modality=modality, offline=offline, progress=progress and ctx.is_main)

        if not ctx.enabled:
            encoder = load()
        else:
            # rank 0 loads (downloading weights if needed) first; the other ranks then find them in the cache
            failure = None
            if ctx.is_main:
                try:
                    encoder = load()
                except BaseException as e:
                    ctx.broadcast(f"rank 0 failed: {e}")
                    raise
            failure = ctx.broadcast(failure)
            if failure:
                raise RecxError(failure)
            if encoder is None:
                encoder = load()
    encoder = encoder.eval().to(device_t)
    if encoder.channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    raw, present = inputs if inputs is not None and known == encoder.modality else checked_inputs(dataset, encoder.modality)
    batch_size = batch_size or DEFAULT_BATCH.get(encoder.modality, 64)

    attrs = encoder.store_attrs()
    attrs.update(
        recx_version=recx.__version__,
        catalog_fingerprint=dataset.catalog_fingerprint,
        item_count=dataset.num_items,
        batch_size=batch_size,
        cache_top_k=int(cache_top_k),
    )
    topk = None
    if cache_top_k:
        from recx.featurize.topk import TrunkCache

        topk = TrunkCache(encoder, cache_top_k)
        attrs.update(topk.attrs())

    # every rank computes the same plan.  rank 0 owns the file: it opens (or resumes) it and
    # calibrates the compute dtype, then tells the other ranks how many planned items are done;
    # a failure there is sent along instead of leaving them waiting
    chunks = plan_chunks(encoder, raw, present, batch_size, chunk_rows)
    planned = int(present.sum())
    writer: StoreWriter | None = None

    def remaining(done: int) -> list[Chunk]:
        if done not in {c.start for c in chunks} | {planned}:
            raise StoreError(f"{partial_path(out)}: {done} items written, not a chunk boundary of this run's plan; "
                             "rerun with --no-resume to start over")
        return [c for c in chunks if c.start >= done]

    todo: list[Chunk] | None = None
    setup: tuple[int, str] | str | None = None
    if ctx.is_main:
        try:
            writer = StoreWriter(
                out, dataset.num_items + 1, encoder.dim, attrs, dtype=dtype, chunk_rows=chunk_rows, force=force,
                resume=resume, hidden_shape=topk.hidden_shape if topk else None, planned=planned,
            )
            todo = remaining(writer.rows_done)
            if strict_images:
                _refuse_noted(writer, raw)
            setup = (writer.rows_done, _compute_dtype(writer, encoder, raw, chunks, device_t, compute_dtype))
        except BaseException as e:
            if writer is not None:
                writer.close()
            ctx.broadcast(f"rank 0 failed: {e}")
            raise
    setup = ctx.broadcast(setup)
    if isinstance(setup, str):
        raise RecxError(setup)
    done, compute = setup
    if todo is None:
        todo = remaining(done)
    try:
        if writer is not None and writer.resumed_from and progress:
            print(f"resuming {writer.tmp} after {writer.resumed_from} of {planned} items", file=sys.stderr)

        workers = (min(4, os.cpu_count() or 1) if num_workers is None else num_workers) if encoder.preprocess_in_workers else 0
        mine = [[b for i, b in enumerate(c.batches) if i % ctx.world_size == ctx.rank] for c in todo]
        flat = [b for bs in mine for b in bs]
        loader = torch.utils.data.DataLoader(
            _Batches(encoder, raw, flat), batch_size=None, shuffle=False, num_workers=workers, collate_fn=_identity
        )
        total = sum(len(b) for b in flat)
        bar = _progress(total, f"{encoder.name} ({compute})", progress and ctx.is_main)
        it = iter(loader)
        for chunk, my_batches in zip(todo, mine):
            results: dict[int, tuple[np.ndarray, Any, list[str | None]]] = {}
            for b in my_batches:
                batch, faults = next(it)
                results[_key(b)] = (*_encode(encoder, topk, batch, faults, device_t, compute), faults)
                bar.update(len(b) * ctx.world_size)
            results = ctx.gather_dicts(results)
            if writer is not None:
                if strict_images:
                    _refuse_broken(chunk, results, raw)
                _write_chunk(writer, chunk, results, encoder.dim, topk)
                if on_chunk is not None:
                    on_chunk(writer.rows_done)
            ctx.barrier()
        bar.close()
        if writer is not None:
            _finish(writer, dataset, raw, encoder.modality, force)
        ctx.barrier()
        return out
    finally:
        if writer is not None:
            writer.close()


def _key(rows: np.ndarray) -> int:
    return int(rows[0])


def _scatter(ok: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` [K, ...] of the items where ``ok`` [B] is set -> [B, ...], zeros elsewhere."""
    if ok.all():
        return values
    out = np.zeros((len(ok),) + values.shape[1:], dtype=values.dtype)
    out[ok] = values
    return out


def _encode(encoder: Encoder, topk: Any, batch: dict[str, torch.Tensor] | None, faults: list[str | None],
            device: torch.device, compute_dtype: str) -> tuple[np.ndarray, Any]:
    """One preprocessed batch of B planned items -> (float32 [B, D], (hidden [B, t, H], mask [B, t]) or None),
    zeros for the items that failed to preprocess (``faults``)."""
    ok = np.array([f is None for f in faults], dtype=bool)
    if batch is None:
        emb = np.zeros((len(ok), encoder.dim), dtype=np.float32)
        if topk is None:
            return emb, None
        t, h = topk.hidden_shape
        return emb, (np.zeros((len(ok), t, h), dtype=np.float16), np.zeros((len(ok), t), dtype=bool))
    if topk is None:
        return _scatter(ok, encode_batch(encoder, batch, device, compute_dtype)), None
    emb, (hidden, mask) = topk.encode(batch, device, compute_dtype)
    return _scatter(ok, emb), (_scatter(ok, hidden), _scatter(ok, mask))


def _refuse_noted(writer: StoreWriter, raw: Sequence[Any]) -> None:
    """``--strict-images`` resuming a store: a broken image an earlier run wrote as absent is an error too."""
    noted = writer.absent_notes()
    if noted:
        r, fault = next(iter(noted.items()))
        raise ImageDecodeError(f"{raw[r]}: cannot decode image ({fault}), written as absent by an earlier run of this store; "
                               "fix or remove the file and rerun with --no-resume, or featurize without --strict-images",
                               str(raw[r]), fault)


def _refuse_broken(chunk: Chunk, results: dict[int, tuple[np.ndarray, Any, list[str | None]]], raw: Sequence[Any]) -> None:
    """``--strict-images``: the chunk's first broken image file as an error naming it."""
    for rows in chunk.batches:
        for r, fault in zip(rows, results[_key(rows)][2]):
            if fault is not None:
                raise ImageDecodeError(f"{raw[r]}: cannot decode image ({fault}); fix or remove the file, or featurize "
                                       "without --strict-images to store the item as absent", str(raw[r]), fault)


def _compute_dtype(writer: StoreWriter, encoder: Encoder, raw: Sequence[Any], chunks: list[Chunk], device: torch.device, requested: str) -> str:
    """The compute dtype recorded in the partial store, or calibrated now on the plan's middle batch and recorded.

    The plan is sorted by cost, so its first batch holds the catalog's shortest items; the middle
    one holds typical items.
    """
    have = writer.attrs.get("compute_dtype")
    if have:
        return str(have)
    batches = [b for c in chunks for b in c.batches]
    if not batches:
        chosen, worst = "float32", 1.0
    else:
        sample, _ = preprocess_items(encoder, [raw[r] for r in batches[len(batches) // 2]])
        chosen, worst = ("float32", 1.0) if sample is None else choose_compute_dtype(encoder, sample, device, requested)
    writer.set_attr("compute_dtype", chosen)
    writer.set_attr("calibration_min_cosine", worst)
    return chosen


def _write_chunk(writer: StoreWriter, chunk: Chunk, results: dict[int, tuple[np.ndarray, Any, list[str | None]]], dim: int,
                 topk: Any) -> None:
    """The chunk's gathered batch results, in plan order, into the store (items with a fault as absent, noted)."""
    n = chunk.stop - chunk.start
    emb = np.zeros((n, dim), dtype=np.float32)
    hidden = mask = None
    if topk is not None:
        t, h = topk.hidden_shape
        hidden = np.zeros((n, t, h), dtype=np.float16)
        mask = np.zeros((n, t), dtype=bool)
    faults: list[str | None] = []
    pos = 0
    for rows in chunk.batches:
        e, hid, f = results[_key(rows)]
        emb[pos : pos + len(rows)] = e
        if hid is not None:
            hs, hm = hid
            hidden[pos : pos + len(rows), : hs.shape[1]] = hs
            mask[pos : pos + len(rows), : hm.shape[1]] = hm
        faults.extend(f)
        pos += len(rows)
    present = np.array([f is None for f in faults], dtype=bool)
    notes = {int(r): f for r, f in zip(chunk.rows, faults) if f is not None}
    writer.write_rows(chunk.rows, emb, hidden, mask, present=present, notes=notes)


def _finish(writer: StoreWriter, dataset: SequenceDataset, raw: Sequence[Any], modality: str, force: bool) -> None:
    """Finish the store, list its broken images next to it and warn when it covers under half of the
    dataset's items with ``modality``; NoItemsError (the partial store removed) when every planned item broke."""
    notes = writer.absent_notes()
    listing = broken_list_path(writer.path)
    if writer.rows_planned and writer.rows_absent == writer.rows_planned:
        _write_broken_list(listing, dataset, raw, notes)
        writer.close()
        writer.tmp.unlink(missing_ok=True)  # nothing in it worth resuming
        raise NoItemsError(f"{dataset.path}: none of the {int(dataset.has_image().sum()):,} items with an image path has a "
                           f"usable file ({len(_missing_images(dataset, raw)):,} missing, {writer.rows_absent:,} broken, "
                           f"listed in {listing}); fix the images, then rerun")
    broken = writer.rows_absent
    writer.finish(force=force)
    _write_broken_list(listing, dataset, raw, notes)
    _warn_thin(dataset, modality, writer.path, writer.rows_planned - broken, broken, raw)


def _write_broken_list(path: Path, dataset: SequenceDataset, raw: Sequence[Any], notes: Mapping[int, str]) -> None:
    """One tab-separated line per broken image (item id, path, fault), in row order; none removes an old list."""
    if not notes:
        path.unlink(missing_ok=True)
        return
    lines = [f"{dataset.item_ids[r]}\t{raw[r]}\t{fault}" for r, fault in sorted(notes.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _warn_thin(dataset: SequenceDataset, modality: str, out: Path, stored: int, broken: int, raw: Sequence[Any]) -> None:
    """One warning when ``stored`` items are under half of those the dataset counts with ``modality``."""
    expected = int(dataset.meta.get("counts", {}).get(f"with_{modality}") or 0)
    if not expected or 2 * stored >= expected:
        return
    if modality != "image":
        warn(f"{out}: only {stored:,} of the {expected:,} items with a text in {dataset.path} have a vector")
        return
    missing = _missing_images(dataset, raw)
    where = _missing_images_note(dataset, missing) if missing else f"image root {dataset.image_root}"
    warn(f"{out}: only {stored:,} of the {expected:,} items with an image in {dataset.path} have a vector "
         f"({len(missing):,} files missing, {broken:,} broken; {where}); a model trained on it sees mostly no image")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    from recx.options import show_progress

    # redirected to a file, a bar would write every update (megabytes per run): bars only on a terminal
    return tqdm(total=total, desc=desc, unit="item", disable=not (enabled and show_progress()), dynamic_ncols=True, smoothing=0.1)
