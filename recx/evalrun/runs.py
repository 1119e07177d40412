"""Evaluate a run folder: load its split through the inference layer, score it with the pure
``recx.evaluate`` library, and record ``results.json`` in the folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from recx.evaluate.metrics import TieRule
from recx.evaluate.protocol import EvalError, EvalResult, evaluate_arrays
from recx.evaluate.results import result_record, write_results
from recx.options import DEFAULT_SEED


def run_name(run_dir: Path, config: dict[str, Any] | None) -> str:
    return str((config or {}).get("name") or Path(run_dir).name)


def load_embeddings(run_dir: str | os.PathLike, split: str = "test", dataset: str | os.PathLike | None = None,
                    device: str | None = None) -> Any:
    """The ``recx.inference.RunEmbeddings`` of ``split`` for a run folder, with a clear error if absent.

    ``dataset``: read this dataset folder instead of the one the run recorded (it must hold the
    same data: the run's fingerprint check refuses another); ``device``: where the user tower runs."""
    if split not in ("valid", "test"):
        raise EvalError(f"unknown split {split!r}; expected valid or test")
    path = Path(run_dir)
    if not path.is_dir():
        raise EvalError(f"{path}: no such run folder")
    from recx.inference.run import export_embeddings

    return export_embeddings(path, split=split, dataset=dataset, device=device)


def run(run_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Evaluate a run on the full catalog, write ``results.json`` in it, return the record
    (options: those of :func:`run_detailed`)."""
    return run_detailed(run_dir, **options)[0]


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
    seed: int = DEFAULT_SEED,
    write: bool = True,
    dataset: str | os.PathLike | None = None,
) -> tuple[dict[str, Any], EvalResult, Any]:
    """Like ``run`` but also returns the EvalResult and the RunEmbeddings (for tables, tests)."""
    path = Path(run_dir)
    emb = load_embeddings(path, split, dataset, device)
    res = evaluate_arrays(emb.user_vectors, emb.item_table, emb.targets, emb.histories, ks, exclude_history, ties,
                          index=index, index_params=index_params, device=device, history=getattr(emb, "history", None))  # type: ignore[arg-type]
    rec = result_record(res, run_name(path, emb.config), split, emb.dataset, emb.config, path.resolve(), n_boot, seed)
    if write:
        rec["replaced_previous"] = write_results(path, rec)
    return rec, res, emb
