"""Ensemble runs: build one from trained runs (selection on validation), load it like any run.

An ensemble run is a folder with ``ensemble.json``: the member run folders, each member's weight
and score scale, the dataset fingerprint every member was trained on, and how the weights were
chosen. ``recx eval``, ``recx eval --compare`` and ``recx recommend`` accept it wherever they
accept a run folder (:func:`recx.inference.run.load_run` dispatches here); ``results.json`` is
written next to ``ensemble.json`` as for any run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from recx.artifacts import atomic_write_text, read_json_config, sha256_file
from recx.ensemble.encoder import EnsembleUserEncoder
from recx.ensemble.selection import Selection, equal_select, greedy_select, score_scale
from recx.errors import RecxError
from recx.evaluate import retrieval as R
from recx.options import DEFAULT_SEED
from recx.trainer.checkpoint import BEST

ENSEMBLE_FILE = "ensemble.json"
FORMAT = "recx-ensemble/1"
METHODS = ("greedy", "equal")


class EnsembleError(RecxError, ValueError):
    """An ensemble cannot be built or loaded: members of other datasets, a missing member, a bad file."""


@dataclass
class EnsembleOptions:
    """How the weights are chosen: ``greedy`` selection or ``equal`` weights, on validation."""

    method: str = "greedy"
    metric: str = "ndcg@10"
    rounds: int = 25
    exclude_history: bool = False  # rank as `recx eval --exclude-history` would
    max_users: int = 50_000  # validation users read (a seeded sample when there are more)
    checkpoint: str = BEST
    seed: int = DEFAULT_SEED  # of that sample


def is_ensemble(run_dir: str | Path) -> bool:
    return (Path(run_dir) / ENSEMBLE_FILE).is_file()


def _load_members(run_dirs: Sequence[Path], checkpoint: str, dataset: str | Path | None = None, device: str | None = None) -> list[Any]:
    """Load every member; all must be trained on the same dataset (same fingerprint)."""
    from recx.inference.run import load_run

    runs = [load_run(d, checkpoint, dataset=dataset, device=device) for d in run_dirs]
    first = runs[0].dataset
    for d, r in zip(run_dirs, runs):
        if r.dataset.fingerprint != first.fingerprint:
            raise EnsembleError(f"{d}: trained on dataset {r.dataset.path} (fingerprint {r.dataset.fingerprint[:12]}), but "
                                f"{run_dirs[0]} on {first.path} ({first.fingerprint[:12]}); an ensemble's members must share one dataset")
    return runs


def _validation_scores(runs: Sequence[Any], opts: EnsembleOptions) -> tuple[list[torch.Tensor], list[float], torch.Tensor, torch.Tensor | None]:
    """Scaled member scores [U, N+1] over the validation users, scales, targets [U], excluded items [U, L] or None."""
    histories, targets = runs[0].dataset.split("valid")
    users = np.arange(len(targets))
    if len(users) > opts.max_users:
        users = np.sort(np.random.default_rng(opts.seed).choice(len(users), opts.max_users, replace=False))
    histories = [histories[i] for i in users]
    scores, scales = [], []
    for run in runs:
        raw = torch.from_numpy(run.encoder.encode(histories)) @ torch.from_numpy(run.encoder.item_table()).T  # [U, N+1]
        history = run.encoder.history_scores(histories)
        if history is not None:  # the member's term is part of its score, as recx eval ranks it
            history.add_to(raw)
        try:
            scale = score_scale(raw)
        except ValueError as e:
            raise EnsembleError(f"{run.run_dir}: {e}") from None
        scores.append(raw.mul_(scale))
        scales.append(scale)
    targets = np.asarray(targets, dtype=np.int64)[users]
    excluded = torch.from_numpy(R.pad_lists(R.exclusion_lists(histories, targets), len(users))) if opts.exclude_history else None
    return scores, scales, torch.from_numpy(targets), excluded


def build_ensemble(run_dirs: Sequence[str | Path], out_dir: str | Path, opts: EnsembleOptions | None = None,
                   name: str | None = None, force: bool = False, dataset: str | Path | None = None,
                   device: str | None = None) -> dict[str, Any]:
    """Choose member weights on validation and write ``out_dir/ensemble.json``; returns its content.

    Members with weight 0 (never picked) stay listed, so the record says what was offered.
    ``force`` replaces an existing ``ensemble.json`` in ``out_dir`` (and nothing else there); a
    trained run's folder is never an ensemble's.  ``dataset`` / ``device``: as for
    :func:`recx.inference.run.load_run`, for every member.
    """
    opts = opts or EnsembleOptions()
    if opts.method not in METHODS:
        raise EnsembleError(f"unknown selection method {opts.method!r}; expected one of {', '.join(METHODS)}")
    dirs = [Path(d).resolve() for d in run_dirs]
    if not dirs:
        raise EnsembleError("an ensemble needs at least one member run")
    if len(set(dirs)) < len(dirs):
        raise EnsembleError("a member run is given twice; greedy selection already repeats members that deserve more weight")
    out = Path(out_dir)
    if (out / "config.json").is_file():
        raise EnsembleError(f"{out}: a trained run's folder, not an ensemble's; choose another --out")
    if is_ensemble(out) and not force:
        raise EnsembleError(f"{out / ENSEMBLE_FILE} exists; pass --force to replace it, or choose another --out")
    if any(is_ensemble(d) for d in dirs):
        raise EnsembleError(f"{next(d for d in dirs if is_ensemble(d))} is itself an ensemble; list its members instead")
    runs = _load_members(dirs, opts.checkpoint, dataset, device)
    scores, scales, targets, excluded = _validation_scores(runs, opts)
    try:
        sel: Selection = (greedy_select(scores, targets, opts.metric, opts.rounds, excluded) if opts.method == "greedy"
                          else equal_select(scores, targets, opts.metric, excluded))
    except ValueError as e:
        raise EnsembleError(str(e)) from None
    names = [d.name for d in dirs]  # the folder the user named (a copied run keeps its old config name)
    dataset = runs[0].dataset
    record = {
        "format": FORMAT,
        "name": name or out.resolve().name,
        "dataset": {"name": dataset.name, "path": str(dataset.path), "fingerprint": dataset.fingerprint},
        "checkpoint": opts.checkpoint,
        "members": [{"run": str(d), "name": n, "weight": w, "count": c, "scale": s, f"valid_{opts.metric}": a,
                     "checkpoint_sha256": sha256_file(d / opts.checkpoint)}
                    for d, n, w, c, s, a in zip(dirs, names, sel.weights, sel.counts, scales, sel.alone)],
        "selection": {"method": opts.method, "metric": opts.metric, "split": "valid", "value": sel.value, "users": int(len(targets)),
                      "exclude_history": opts.exclude_history, "rounds": opts.rounds, "sample_seed": opts.seed,
                      "trace": [{**t, "member": names[t["member"]]} for t in sel.trace]},
    }
    atomic_write_text(out / ENSEMBLE_FILE, json.dumps(record, indent=2) + "\n")
    return record


def read_ensemble(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``ensemble.json`` of ``run_dir``; EnsembleError names the file and the fault."""
    path = Path(run_dir) / ENSEMBLE_FILE
    record = read_json_config(path, EnsembleError, f"{path}: no such file; build the ensemble with `recx ensemble --run RUN --run RUN... --out {run_dir}`")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise EnsembleError(f"{path}: not a recx ensemble (expected format {FORMAT!r})")
    members = record.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) and {"run", "weight", "scale"} <= m.keys() for m in members):
        raise EnsembleError(f"{path}: 'members' must be a non-empty list of {{run, weight, scale}}")
    return record


def load_ensemble(run_dir: str | Path, checkpoint: str | None = None, dataset: str | Path | None = None, device: str | None = None) -> Any:
    """An ensemble run as a :class:`recx.inference.run.LoadedRun` (members with weight 0 are not loaded).

    Members load the checkpoint the weights were chosen with (``recx ensemble --checkpoint``,
    recorded in ensemble.json); ``checkpoint``, the argument every run kind's loader takes, must
    be None or that one.  ``dataset`` / ``device``: as for :func:`recx.inference.run.load_run`."""
    from recx.inference.run import LoadedRun

    record = read_ensemble(run_dir)
    recorded = record.get("checkpoint", BEST)
    if checkpoint not in (None, BEST, recorded):
        raise EnsembleError(f"{Path(run_dir) / ENSEMBLE_FILE}: its members' weights were chosen with {recorded}, not {checkpoint}")
    checkpoint = recorded
    used = [m for m in record["members"] if float(m["weight"]) > 0]
    missing = [m["run"] for m in used if not Path(m["run"]).is_dir()]
    if missing:
        raise EnsembleError(f"{Path(run_dir) / ENSEMBLE_FILE}: member run {missing[0]} is missing")
    for m in used:  # ensembles built before members' hashes were recorded are not checked
        want, path = m.get("checkpoint_sha256"), Path(m["run"]) / checkpoint
        if want and path.is_file() and sha256_file(path) != want:
            raise EnsembleError(f"{Path(run_dir) / ENSEMBLE_FILE}: member {path} changed since the ensemble was built (retrained?); "
                                f"rebuild it with `recx ensemble ... --out {run_dir} --force`")
    runs = _load_members([Path(m["run"]) for m in used], checkpoint, dataset, device)
    want = record["dataset"]["fingerprint"]
    if runs[0].dataset.fingerprint != want:
        raise EnsembleError(f"{Path(run_dir) / ENSEMBLE_FILE}: members now see dataset fingerprint {runs[0].dataset.fingerprint[:12]}, "
                            f"the ensemble was built on {want[:12]} (the dataset changed since)")
    encoder = EnsembleUserEncoder([r.encoder for r in runs], [float(m["weight"]) * float(m["scale"]) for m in used])
    config = {"name": record["name"], "model": "ensemble", "members": [{"run": m["run"], "weight": m["weight"]} for m in used],
              "selection": {k: v for k, v in record["selection"].items() if k != "trace"}}
    return LoadedRun(Path(run_dir), encoder, runs[0].dataset, config, checkpoint)
