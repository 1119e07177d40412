"""Evaluate a training run and record ``results.json`` in its folder.

``results.json`` holds the latest evaluation at the top level (``metrics``, ``split``, ``ks``,
``exclude_history``, ``ties``, ``index``, counts, dataset fingerprint, run name...).  Earlier
evaluations with *different* settings are kept under ``previous``; an evaluation with the same
settings replaces the old one (the CLI says so), so no result is lost silently.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from recx.errors import RecxError
from recx.evaluate.metrics import TieRule
from recx.evaluate.protocol import EvalError, EvalResult, evaluate_arrays
from recx.evaluate.stats import bootstrap_ci
from recx.artifacts import atomic_write_text

RESULTS_FILE = "results.json"
_SETTING_KEYS = ("split", "ks", "exclude_history", "ties", "index", "index_params")


def evaluate_run_embeddings(
    emb: Any,
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
    index: str = "flat",
    index_params: dict[str, int] | None = None,
    device: str = "auto",
) -> EvalResult:
    """Evaluate a ``recx.inference.RunEmbeddings`` (user_vectors, item_table, targets, histories)."""
    return evaluate_arrays(
        emb.user_vectors, emb.item_table, emb.targets, emb.histories, ks, exclude_history, ties,
        index=index, index_params=index_params, device=device,  # type: ignore[arg-type]
    )


def result_record(
    res: EvalResult,
    name: str,
    split: str,
    dataset: Any | None = None,
    config: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The JSON-serialisable record of one evaluation (what results.json holds)."""
    import recx

    cfg = config or {}
    rec: dict[str, Any] = {
        "run": name,
        "run_dir": str(run_dir) if run_dir is not None else None,
        "split": split,
        "ks": res.info.get("ks"),
        "exclude_history": res.info.get("exclude_history"),
        "ties": res.info.get("ties"),
        "index": res.info.get("index", "flat"),
        "index_params": res.info.get("index_params", {}),
        "metrics": res.metrics,
        "ci95": {k: list(v) for k, v in bootstrap_ci(res.per_user, n_boot, 0.95, seed).items()} if n_boot else None,
        "bootstrap": {"samples": n_boot, "seed": seed, "level": 0.95} if n_boot else None,
        "counts": {"users": res.info.get("num_users"), "items": res.info.get("num_items")},
        "item_tower": cfg.get("item_tower"),
        "loss": cfg.get("loss"),
        "timings": res.info.get("timings", {}),
        "device": res.info.get("device"),
        "recx_version": recx.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if dataset is not None:
        rec["dataset"] = {"name": dataset.name, "path": str(dataset.path), "fingerprint": dataset.fingerprint}
    if res.approx_metrics is not None:
        rec["approx_metrics"] = res.approx_metrics
        rec["index_recall"] = res.index_recall
    return rec


def write_results(run_dir: Path, record: dict[str, Any]) -> bool:
    """Write ``record`` as the top level of ``run_dir/results.json`` atomically, keeping older
    evaluations with other settings under ``previous``.  Returns True if an evaluation with the
    same settings was replaced."""
    path = Path(run_dir) / RESULTS_FILE
    previous: list[dict[str, Any]] = []
    replaced = False
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise RecxError(f"{path}: not valid JSON ({e.msg}); move it away to re-evaluate") from None
        entries = [{k: v for k, v in old.items() if k != "previous"}] + list(old.get("previous", []))
        key = tuple(json.dumps(record.get(k), sort_keys=True) for k in _SETTING_KEYS)
        for e in entries:
            if tuple(json.dumps(e.get(k), sort_keys=True) for k in _SETTING_KEYS) == key:
                replaced = True
            else:
                previous.append(e)
    out = dict(record)
    if previous:
        out["previous"] = previous
    atomic_write_text(path, json.dumps(out, indent=2) + "\n")
    return replaced


def run_name(run_dir: Path, config: dict[str, Any] | None) -> str:
    return str((config or {}).get("name") or Path(run_dir).name)


def load_run(run_dir: str | os.PathLike, split: str = "test") -> Any:
    """``recx.inference.export_embeddings`` (the inference layer) for a run folder, with a clear error if absent."""
    if split not in ("valid", "test"):
        raise EvalError(f"unknown split {split!r}; expected valid or test")
    path = Path(run_dir)
    if not path.is_dir():
        raise EvalError(f"{path}: no such run folder")
    try:
        from recx.inference.run import export_embeddings
    except ImportError as e:
        raise EvalError(f"cannot evaluate {path}: the inference layer is unavailable ({e})") from None
    return export_embeddings(path, split=split)


def run(
    run_dir: str | os.PathLike,
    split: str = "test",
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
    index: str = "flat",
    index_params: dict[str, int] | None = None,
    device: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate a run on the full catalog, write ``results.json`` in it, return the record."""
    record, _, _ = run_detailed(run_dir, split, ks, exclude_history, ties, index, index_params, device, n_boot, seed, write)
    return record


def run_detailed(
    run_dir: str | os.PathLike,
    split: str = "test",
    ks: Iterable[int] = (10,),
    exclude_history: bool = False,
    ties: TieRule = "pessimistic",
    index: str = "flat",
    index_params: dict[str, int] | None = None,
    device: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    write: bool = True,
) -> tuple[dict[str, Any], EvalResult, Any]:
    """Like ``run`` but also returns the EvalResult and the RunEmbeddings (for tables, tests)."""
    path = Path(run_dir)
    emb = load_run(path, split)
    res = evaluate_run_embeddings(emb, ks, exclude_history, ties, index, index_params, device)
    rec = result_record(res, run_name(path, emb.config), split, emb.dataset, emb.config, path.resolve(), n_boot, seed)
    if write:
        rec["replaced_previous"] = write_results(path, rec)
    return rec, res, emb


def write_per_user_csv(
    path: str | os.PathLike,
    results: Sequence[tuple[str, EvalResult]],
    targets: np.ndarray,
    user_ids: Sequence[str] | None = None,
) -> None:
    """Long-format CSV, one row per (model, user): model, user, user_id, target, rank, metrics.

    Refuses to overwrite an existing file."""
    out = Path(path)
    if out.exists():
        raise RecxError(f"{out}: already exists; choose another --per-user file")
    names = list(results[0][1].per_user) if results else []
    lines: list[list[Any]] = []
    for model, res in results:
        for u in range(len(targets)):
            lines.append(
                [model, u, user_ids[u] if user_ids is not None else "", int(targets[u]), float(res.ranks[u])]
                + [f"{float(res.per_user[n][u]):.6g}" for n in names]
            )
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "user", "user_id", "target", "rank", *names])
    w.writerows(lines)
    atomic_write_text(out, buf.getvalue())
