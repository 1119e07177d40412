"""``recx export``: a trained run as files another service can load without recx's trainer.

Export dir layout::

    manifest.json      written last: format, recx version, run name and config, dataset
                       (name, fingerprints, item count), encoder and index facts, and every
                       other file's size and sha256
    vectors.npy        [N+1, D] float32 item vectors (row 0 padding; score = inner product)
    vectors.h5         the same vectors in recx's H5 store format (recx/featurize/store.py)
    items.jsonl        items 1..N: {"index", "id", "title"}
    index.faiss        FAISS inner-product index over items 1..N (FAISS id j = item j+1)
    index.json         its kind and parameters, and its recall@K against exact top-K,
                       measured at export time on the run's test users (a seeded sample of
                       CHECK_USERS where there are more)
    user_encoder.pt    TorchScript: left-padded item indices [B, L] int64 -> user vectors [B, D];
                       a run with a history term also has ``history_scores(padded [B, W])`` ->
                       (items, values) [B, W]: what each history item adds to its score
    user_encoder.onnx  the same, where the ``onnx`` package is installed

The dir is assembled in a hidden ``.NAME.partial-*`` folder beside the target and renamed
onto it when complete, so a folder named NAME always holds a finished export; ``load_export``
also refuses a folder without a manifest or with a file whose size or hash differs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from recx.artifacts import EXPORT, PARTIAL_TAG, atomic_folder, check_replaceable, sha256_file
from recx.data.dataset import user_sample
from recx.errors import RecxError
from recx.evaluate import retrieval as R
from recx.inference.catalog import Catalog
from recx.inference.encoders import ScriptedUserEncoder

FORMAT = "recx-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS_NPY = "vectors.npy"
VECTORS_H5 = "vectors.h5"
ITEMS = "items.jsonl"
INDEX = "index.faiss"
INDEX_INFO = "index.json"
ENCODER = "user_encoder.pt"
ENCODER_ONNX = "user_encoder.onnx"
# users of the encoder check and the index recall: 10,000 pin both to ~0.01; every test user of
# a million-user catalog would rank the whole catalog four times (docs/scale.md)
CHECK_USERS = 10_000


class ExportError(RecxError, ValueError):
    """An export dir is missing, unfinished, altered, or does not fit the request."""


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """TorchScript is deprecated in recent torch but is the portable format this export promises
    (torch.export cannot trace GRU4Rec's data-dependent packing); silence only that warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        yield


# -- writing ----------------------------------------------------------------------------------
def _write_store(path: Path, table: np.ndarray, catalog: Catalog, run_name: str, run_dir: Path) -> None:
    """The item vectors as a finished H5 store (row 0 and nothing else absent)."""
    import recx
    from recx.featurize.store import StoreWriter

    n, d = table.shape[0] - 1, table.shape[1]
    attrs = {
        "recx_version": recx.__version__, "encoder": f"recx-run:{run_name}", "source": str(run_dir),
        "modality": "item_vectors", "layer": "item_tower", "pooling": "none", "normalize": False,
        "catalog_fingerprint": catalog.catalog_fingerprint, "item_count": n,
    }
    writer = StoreWriter(path, n + 1, d, attrs, dtype="float32", chunk_rows=min(4096, n + 1), resume=False, planned=n)
    try:
        for lo in range(1, n + 1, 1 << 16):
            hi = min(n + 1, lo + (1 << 16))
            writer.write_rows(np.arange(lo, hi), table[lo:hi])
        writer.finish()
    finally:
        writer.close()


def _index_recall(table: np.ndarray, users: np.ndarray, kind: str, params: dict[str, int], k: int,
                  history: R.HistoryScores | None) -> tuple[R.ApproxIndex, dict[str, Any]]:
    """Build the index and measure its recall@k against exact top-k on ``users`` [U, D]."""
    built = R.build_index(table, kind, device="cpu", **params)  # type: ignore[arg-type]
    exact = R.topk_exact(users, table, k, backend="torch", device="cpu", history=history)
    t0 = time.perf_counter()
    found = (R.topk_approx(users, table, k, built, history=history) if kind != "flat"
             else R.topk_faiss(users, table, k, index=built, history=history))
    seconds = time.perf_counter() - t0
    recall = float(R.recall_vs_exact(found, exact).mean()) if len(users) else None
    info = {
        "kind": kind, "params": built.params, "metric": "inner_product", "id_offset": 1, "k": k,
        f"recall@{k}": recall, "recall_queries": int(len(users)), "recall_queries_from": "the run's test-split users",
        "build_seconds": round(built.build_seconds, 3), "search_seconds": round(seconds, 3),
    }
    return built, info


def _script_bytes(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buf)
    return buf.getvalue()


def _write_onnx(module: torch.nn.Module, path: Path, width: int) -> dict[str, Any]:
    """ONNX copy of the user encoder where the ``onnx`` package is installed (never required)."""
    if importlib.util.find_spec("onnx") is None:
        return {"written": False, "reason": "the onnx package is not installed"}
    example = torch.ones(2, width, dtype=torch.int64)
    buf = io.BytesIO()
    try:
        torch.onnx.export(
            module, (example,), buf, input_names=["padded"], output_names=["user_vectors"],
            dynamic_axes={"padded": {0: "batch", 1: "length"}, "user_vectors": {0: "batch"}}, dynamo=False,
        )
    except Exception as e:  # exporter coverage varies by torch version and operator
        return {"written": False, "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    path.write_bytes(buf.getvalue())
    return {"written": True, "file": ENCODER_ONNX}


def _encoder_check(trained: np.ndarray, exported: np.ndarray, table: np.ndarray, k: int,
                   trained_history: R.HistoryScores | None, exported_history: R.HistoryScores | None) -> dict[str, Any]:
    """How closely the exported encoder reproduces the trained model on the same users."""
    a = R.topk_exact(trained, table, k, backend="torch", device="cpu", history=trained_history)
    b = R.topk_exact(exported, table, k, backend="torch", device="cpu", history=exported_history)
    same = (a.items == b.items).all(1)
    out = {
        "users": int(len(trained)), "k": k, "same_topk_fraction": float(same.mean()) if len(same) else None,
        "max_abs_vector_diff": float(np.abs(trained - exported).max()) if len(trained) else None,
    }
    if trained_history is not None and exported_history is not None and len(trained):
        out["max_abs_history_diff"] = float(np.abs(trained_history.values - exported_history.values).max())
    return out


def export_run(
    run_dir: str | Path,
    out: str | Path,
    index: str = "flat",
    index_params: dict[str, int] | None = None,
    k: int = 10,
    checkpoint: str = "best.pt",
    force: bool = False,
    onnx: bool = True,
    dataset: str | Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Write the export dir ``out`` for a finished run; returns its manifest.

    ``index``: flat, ivf or hnsw (``index_params`` as ``recx eval``'s); its recall@``k``
    against exact top-k over the test users is measured and written to ``index.json``.
    ``out`` must not exist unless ``force`` (then it is replaced only once the new export is
    complete).  ``dataset`` / ``device``: as for :func:`recx.inference.run.load_run` (the
    device runs the trained model for the checks; the exported encoder is saved for the CPU)."""
    import recx
    from recx.inference.run import load_run

    out = Path(out).resolve()
    if PARTIAL_TAG in out.name:
        raise ExportError(f"{out}: names containing {PARTIAL_TAG!r} are reserved for unfinished exports")
    check_replaceable(out, EXPORT, force, error=ExportError)
    run = load_run(run_dir, checkpoint, dataset=dataset, device=device)
    enc, ds = run.encoder, run.dataset
    try:
        module = enc.history_encoder()  # an ensemble or a reo-lm run has none: one line saying so
    except RecxError as e:
        raise ExportError(f"{run_dir}: {e}") from None
    table = np.ascontiguousarray(enc.item_table(), dtype=np.float32)
    catalog = Catalog.from_dataset(ds)
    name = str(run.config.get("name"))
    histories, _ = ds.split("test")
    sample = user_sample(len(histories), CHECK_USERS, seed=0)
    if sample is not None:
        histories = [histories[u] for u in sample]

    with atomic_folder(out) as tmp:
        np.save(tmp / VECTORS_NPY, table)
        _write_store(tmp / VECTORS_H5, table, catalog, name, Path(run_dir).resolve())
        catalog.write(tmp / ITEMS)

        with _quiet_jit():
            (tmp / ENCODER).write_bytes(_script_bytes(module))  # Python writes: a full disk is an OSError, not an abort
            scripted = ScriptedUserEncoder(torch.jit.load(str(tmp / ENCODER)), table, enc.max_len, enc.causal, enc.batch_size,
                                           history_window=enc.history_window)
        width = enc.max_len if enc.causal else enc.max_len - 1
        trained_users, trained_history = enc.encode(histories), enc.history_scores(histories)
        check = _encoder_check(trained_users, scripted.encode(histories), table, k, trained_history, scripted.history_scores(histories))
        onnx_info = _write_onnx(module, tmp / ENCODER_ONNX, width) if onnx else {"written": False, "reason": "not requested"}

        if R.faiss_available():
            import faiss

            built, index_info = _index_recall(table, trained_users, index, dict(index_params or {}), k, trained_history)
            if sample is not None:
                index_info["recall_queries_from"] = f"a seeded sample of the run's {ds.num_users:,} test-split users"
            (tmp / INDEX).write_bytes(faiss.serialize_index(built.index).tobytes())
            index_info["file"] = INDEX
        elif index == "flat":
            index_info = {"kind": "flat", "file": None, "reason": "faiss is not installed; exact top-K by matmul over vectors.npy"}
        else:
            raise ExportError(f"--index {index} needs faiss: pip install 'recx[cpu]'")
        (tmp / INDEX_INFO).write_text(json.dumps(index_info, indent=2) + "\n", encoding="utf-8")

        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "recx_version": recx.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "run": {"name": name, "dir": str(Path(run_dir).resolve()), "checkpoint": checkpoint},
            "config": run.config,
            "dataset": {
                "name": ds.name, "path": str(ds.path.resolve()), "fingerprint": ds.fingerprint,
                "catalog_fingerprint": ds.catalog_fingerprint, "num_items": ds.num_items,
            },
            "dim": int(table.shape[1]),
            "user_encoder": {
                "file": ENCODER, "format": "torchscript", "model": run.config.get("model"),
                "input": "int64 [B, L] item indices 1..N, left-padded with 0, newest last",
                "max_len": enc.max_len, "max_input_length": width, "causal": enc.causal,
                "output": f"float32 [B, {table.shape[1]}] user vectors; score = vector @ vectors.npy[item].T",
                "check": check, "onnx": onnx_info,
                **({"history_term": {
                    "method": "history_scores", "window": enc.history_window,
                    "input": f"int64 [B, {enc.history_window}] the last {enc.history_window} history items, left-padded with 0, newest last",
                    "output": "(int64 [B, W] items, each once, 0 = none; float32 [B, W] what each adds to its score)",
                    "onnx": "not in user_encoder.onnx (it holds the user vectors only)"}} if enc.history_window else {}),
            },
            "index": index_info,
            "files": {f: {"bytes": (tmp / f).stat().st_size, "sha256": sha256_file(tmp / f)} for f in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        check_replaceable(out, EXPORT, force, error=ExportError)  # nothing appeared meanwhile that is not ours
    return manifest


# -- reading ----------------------------------------------------------------------------------
@dataclass
class ExportedRun:
    """A checked export dir: its manifest and paths; ``recommender()`` loads it for serving."""

    path: Path
    manifest: dict[str, Any]

    @property
    def catalog_fingerprint(self) -> str:
        return str(self.manifest["dataset"]["catalog_fingerprint"])

    def catalog(self) -> Catalog:
        return Catalog.read(self.path / ITEMS, self.catalog_fingerprint, str(self.manifest["dataset"].get("name", "")))

    def vectors(self) -> np.ndarray:
        return np.load(self.path / VECTORS_NPY)

    def user_encoder(self, table: np.ndarray | None = None, device: str | None = None) -> ScriptedUserEncoder:
        """The TorchScript user encoder on ``device`` (auto, cpu, cuda, cuda:N; None: the CPU)."""
        from recx.device import resolve_device

        info = self.manifest["user_encoder"]
        where = resolve_device(device) if device is not None else torch.device("cpu")
        with _quiet_jit():
            module = torch.jit.load(str(self.path / info["file"]), map_location=where)
        return ScriptedUserEncoder(module, self.vectors() if table is None else table, info["max_len"], info["causal"], device=where,
                                   history_window=int(info.get("history_term", {}).get("window", 0)))

    def index(self) -> R.ApproxIndex | None:
        """The saved FAISS index (None when faiss is missing and the index is flat: matmul serves)."""
        info = self.manifest["index"]
        if not (self.path / INDEX).is_file() or not R.faiss_available():
            if info["kind"] != "flat":
                raise ExportError(f"{self.path / INDEX}: a {info['kind']} index needs faiss: pip install 'recx[cpu]'")
            return None
        import faiss

        return R.ApproxIndex(kind=info["kind"], index=faiss.read_index(str(self.path / INDEX)), params=info.get("params", {}))

    def check_dataset(self, dataset: Any) -> None:
        """Refuse a dataset whose catalog is not the one this export was made from."""
        if dataset.catalog_fingerprint != self.catalog_fingerprint:
            ds = self.manifest["dataset"]
            raise ExportError(
                f"{self.path}: exported from dataset {ds.get('name')!r} (catalog {self.catalog_fingerprint[:12]}), "
                f"but {dataset.path} has catalog {dataset.catalog_fingerprint[:12]}; its ids would map to the wrong items"
            )


def load_export(path: str | Path, verify: bool = True) -> ExportedRun:
    """Open an export dir, refusing an unfinished or altered one (``verify``: check sha256 too)."""
    path = Path(path)
    if PARTIAL_TAG in path.name:
        raise ExportError(f"{path}: an unfinished export (recx export was interrupted); run it again")
    if not path.is_dir():
        raise ExportError(f"{path}: no such export dir; create one with `recx export --run RUN --out DIR`")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ExportError(f"{path}: no {MANIFEST}, so not a finished recx export; run `recx export` again")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExportError(f"{mpath}: not valid JSON ({e.msg})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ExportError(f"{mpath}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}; this recx reads {FORMAT} {FORMAT_VERSION}")
    files = manifest.get("files") or {}
    for name in (VECTORS_NPY, ITEMS, ENCODER):
        if name not in files:
            raise ExportError(f"{mpath}: lists no {name}")
    for name, meta in files.items():
        f = path / name
        if not f.is_file():
            raise ExportError(f"{f}: missing (listed in {MANIFEST}); the export is incomplete")
        if f.stat().st_size != meta["bytes"]:
            raise ExportError(f"{f}: {f.stat().st_size} bytes, {MANIFEST} says {meta['bytes']}; the export is damaged or half-copied")
        if verify and sha256_file(f) != meta["sha256"]:
            raise ExportError(f"{f}: sha256 differs from {MANIFEST}; the file changed after export")
    return ExportedRun(path, manifest)
