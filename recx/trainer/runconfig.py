"""config.json of a run: the format version, its migrations, and run-relative paths.

    {"run_format": 5,
     "config": {"model": {...}, "tower": {...}, ...},   TrainConfig.to_dict(), paths run-relative
     "dataset_fingerprint": ..., "num_items": ..., "world_size": ..., "store_digests": {...}}

Older runs load through explicit migrations, one per format step:

    1 -> 2   runs from before ``loss_weighting`` trained with each batch's mean weighing the same
    2 -> 3   flat options become sections; ``amp`` is ``precision`` (off -> fp32) and
             ``reo_pooling`` is ``pooling``; absolute paths stay absolute
    3 -> 4   Reo-LM runs from before the ROMA recipe read the joined text cut as a whole
             (``item_text = "text"``) and a window of ``max_len`` items (``user_items = 0``)
    4 -> 5   runs from before the history term have none (``history_term = "off"``)

Paths (dataset, stores, warm start, Reo-LM init) that lie inside the run's workspace are
written relative to the run folder, so a workspace can be moved or copied and its runs still
find their data; paths outside it stay absolute.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable

from recx.trainer.config import OPTIONS, ConfigError, TrainConfig

FORMAT = TrainConfig.FORMAT
META_KEYS = ("dataset_fingerprint", "num_items", "world_size", "store_digests")  # config.json keys that are not options
PATH_OPTIONS = tuple(name for name, spec in OPTIONS.items() if spec.path and name != "runs_dir")


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "loss_weighting": raw.get("loss_weighting", "batch"), "run_format": 2}


def _v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in raw.items() if k not in META_KEYS and k != "run_format"}
    if "amp" in flat:
        amp = flat.pop("amp")
        flat["precision"] = "fp32" if amp == "off" else amp
    if "reo_pooling" in flat:
        flat["pooling"] = flat.pop("reo_pooling")
    nested = TrainConfig.resolve(flat, source="config.json").to_dict()
    return {**{k: raw[k] for k in META_KEYS if k in raw}, "run_format": 3, "config": nested}


def _v3_to_v4(raw: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(raw["config"])
    reolm = config.setdefault("reolm", {})
    reolm.update(item_text="text", user_items=0)  # format 3 had neither (2 -> 3 fills today's defaults)
    return {**raw, "run_format": 4, "config": config}


def _v4_to_v5(raw: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(raw["config"])
    config.setdefault("model", {})["history_term"] = "off"  # whatever today's default, their weights hold no term
    return {**raw, "run_format": 5, "config": config}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A config.json of any format as the current format."""
    version = int(raw.get("run_format", 1))
    if version > FORMAT:
        raise ConfigError(f"config.json has run_format {version}, newer than this recx reads ({FORMAT}): upgrade recx")
    while version < FORMAT:
        raw = MIGRATIONS[version](raw)
        version = int(raw["run_format"])
    return raw


def workspace_root(run_dir: Path) -> Path:
    """The folder whose contents move with the run: the workspace above it (recx.toml), else
    the folder holding its runs folder."""
    run_dir = Path(run_dir).resolve()
    for folder in run_dir.parents:
        if (folder / "recx.toml").is_file():
            return folder
    return run_dir.parent.parent


def to_disk(cfg: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """The nested config with paths inside the workspace relative to ``run_dir``."""
    run_dir = Path(run_dir).resolve()
    root = workspace_root(run_dir)

    def rel(p: str) -> str:
        if not p:
            return p
        absolute = Path(p).resolve()
        return os.path.relpath(absolute, run_dir) if absolute.is_relative_to(root) else str(absolute)

    out = copy.deepcopy(cfg)
    for name in PATH_OPTIONS:
        out.set(name, rel(out.get(name)))
    out.run.stores = {m: rel(p) for m, p in out.run.stores.items()}
    out.run.runs_dir = ""  # where the run lies now: the folder holding it
    return out.to_dict()


def from_disk(nested: dict[str, Any], run_dir: Path, source: str) -> TrainConfig:
    """The config of a run folder, its relative paths resolved against where the folder is now."""
    run_dir = Path(run_dir).resolve()
    cfg = TrainConfig.from_dict(nested, source=source)

    def absolute(p: str) -> str:
        return str((run_dir / p).resolve()) if p and not Path(p).is_absolute() else p

    for name in PATH_OPTIONS:
        cfg.set(name, absolute(cfg.get(name)))
    cfg.run.stores = {m: absolute(p) for m, p in cfg.run.stores.items()}
    cfg.run.runs_dir, cfg.run.name = str(run_dir.parent), run_dir.name
    return cfg
