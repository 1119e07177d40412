"""The record of one evaluation and the files it is written to: ``results.json``, per-user CSV.

Pure: it takes an ``EvalResult`` (and the dataset and config it came from) and never loads a
run; ``recx.evalrun`` loads runs and calls it.

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
from typing import Any, Sequence

import numpy as np

from recx.errors import RecxError
from recx.evaluate.protocol import EvalResult
from recx.evaluate.stats import bootstrap_ci
from recx.artifacts import atomic_write_text

RESULTS_FILE = "results.json"
_SETTING_KEYS = ("split", "ks", "exclude_history", "ties", "index", "index_params")


def result_record(
    res: EvalResult,
    name: str,
    split: str,
    dataset: Any | None = None,
    config: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    n_boot: int = 1000,
    seed: int = 42,  # recx.options.DEFAULT_SEED (not imported: this library stays below the commands)
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
        "history_term": cfg.get("history_term"),  # the model's learned score for history items (None: not a trained run)
        "history_term_used": bool(res.info.get("history_term")),  # False too where validation turned the term off
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
