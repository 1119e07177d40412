"""Where datasets, stores and runs live, and the defaults of the three stage commands.

A workspace is a folder holding ``recx.toml``::

    [workspace]
    dataset = "data"            # dataset directory (relative to the workspace)
    stores = "stores"           # H5 embedding stores
    runs = "runs"               # one folder per training run

    [stores]                    # modality -> store path, written by `recx featurize`
    text = "stores/minilm.h5"

    [featurize]
    model = "minilm"

    [train]
    item_tower = "id+text"      # recx's best measured single tower where the items have text
    loss = "debiased_ce"

    [eval]
    k = [10]

Every command looks for ``recx.toml`` in the current folder and its parents; command-line
options override the file.  The file is rewritten atomically when a stage records something
(e.g. `recx featurize` records the store it wrote under ``[stores]``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from recx.artifacts import atomic_write_text
from recx.errors import RecxError

CONFIG_NAME = "recx.toml"
RUN_CONFIG = "config.json"
FINISHED = "finished.json"  # a run's marker that training ended (recx/trainer/checkpoint.py)
BEST = "best.pt"  # a run's best-validation checkpoint


class WorkspaceError(RecxError):
    """An unreadable or inconsistent workspace; the message names the file and the fault."""


class NoWorkspace(WorkspaceError):
    """No recx.toml in the folder or its parents: commands that can run without one catch this
    (and only this: a broken recx.toml is never taken for an absent one)."""


def default_tower(has_text: bool) -> dict[str, Any]:
    """The item tower a new workspace trains: the best single configuration measured on both
    Amazon datasets (docs/repeats.md): an ID table plus the text store where items have text
    (`recx featurize` writes the store), else the ID table.  Not whitened: whitening helped
    amazon-scientific and hurt amazon-office more."""
    return {"item_tower": "id+text"} if has_text else {"item_tower": "id"}


def default_config(dataset: str = "data", has_text: bool = True) -> dict[str, Any]:
    return {
        "workspace": {"dataset": dataset, "stores": "stores", "runs": "runs"},
        "stores": {},
        "featurize": {"model": "minilm"},
        "train": {**default_tower(has_text), "loss": "debiased_ce"},
        "eval": {"k": [10]},
    }


def toml_error(path: Path, e: "tomllib.TOMLDecodeError") -> str:
    """``PATH:LINE:COL: not valid TOML (reason)`` from tomllib's message ``reason (at line L, column C)``."""
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
    where = f"{path}:{m.group(1)}:{m.group(2)}" if m else str(path)
    return f"{where}: not valid TOML ({reason}); fix the file or delete it and rerun `recx data ...`"


@dataclass
class Workspace:
    root: Path
    config: dict[str, Any] = field(default_factory=dict)

    # -- creation and discovery ------------------------------------------------------------
    @classmethod
    def find(cls, start: str | os.PathLike | None = None) -> "Workspace":
        """The workspace containing ``start`` (default: the current folder)."""
        here = Path(start or os.getcwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_NAME).is_file():
                return cls.load(folder)
        raise NoWorkspace(
            f"no {CONFIG_NAME} in {here} or its parents: start a workspace with "
            "`recx data synth --out data` or `recx data import FORMAT SRC --out data`"
        )

    @classmethod
    def load(cls, root: str | os.PathLike) -> "Workspace":
        path = Path(root) / CONFIG_NAME
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise WorkspaceError(toml_error(path, e)) from None
        except UnicodeDecodeError as e:
            raise WorkspaceError(f"{path}: not UTF-8 text (byte {e.start})") from None
        for section in ("workspace", "stores", "train", "eval", "featurize"):
            if not isinstance(config.get(section, {}), dict):
                raise WorkspaceError(f"{path}: [{section}] must be a table, not {type(config[section]).__name__}")
        return cls(Path(root).resolve(), config)

    @classmethod
    def init(cls, root: str | os.PathLike, dataset_dir: str | os.PathLike, has_text: bool = True) -> "Workspace":
        """Create ``recx.toml`` in ``root`` pointing at ``dataset_dir``, or update its dataset."""
        root = Path(root).resolve()
        rel = os.path.relpath(Path(dataset_dir).resolve(), root)
        if (root / CONFIG_NAME).is_file():
            ws = cls.load(root)
            ws.config.setdefault("workspace", {})["dataset"] = rel
        else:
            ws = cls(root, default_config(rel, has_text))
        ws.save()
        return ws

    def save(self) -> None:
        atomic_write_text(self.root / CONFIG_NAME, tomli_w.dumps(self.config))

    # -- accessors -------------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        return dict(self.config.get(name, {}))

    def resolve(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def dataset_dir(self) -> Path:
        return self.resolve(self.config.get("workspace", {}).get("dataset", "data"))

    @property
    def stores_dir(self) -> Path:
        return self.resolve(self.config.get("workspace", {}).get("stores", "stores"))

    @property
    def runs_dir(self) -> Path:
        return self.resolve(self.config.get("workspace", {}).get("runs", "runs"))

    def store_for(self, modality: str) -> Path | None:
        """The store recorded for ``modality`` (text, image, clip...), if any."""
        p = self.config.get("stores", {}).get(modality)
        return self.resolve(p) if p else None

    def record_store(self, modality: str, path: str | os.PathLike) -> None:
        rel = os.path.relpath(Path(path).resolve(), self.root)
        self.config.setdefault("stores", {})[modality] = rel
        self.save()

    def latest_run(self, finished: bool = True) -> Path:
        """The most recently finished run (``finished.json``, or a best checkpoint for runs made
        before that marker); an interrupted run is never taken for "the latest".  With
        ``finished`` False: the most recently written unfinished run (what `recx train --resume`
        continues)."""
        if not finished:
            open_runs = [p for p in self.runs_dir.glob("*") if (p / RUN_CONFIG).is_file() and not run_finished(p)]
            if not open_runs:
                raise WorkspaceError(f"no unfinished run in {self.runs_dir} to resume: name one with --run")
            return max(open_runs, key=lambda p: max(f.stat().st_mtime for f in p.iterdir()))
        runs = [p for p in self.runs_dir.glob("*") if (p / RUN_CONFIG).is_file() and (p / BEST).is_file()]
        done = [p for p in runs if run_finished(p)]
        if not done:
            unfinished = f" ({len(runs)} unfinished: continue one with `recx train --resume --run RUN`, or name it with --run)" if runs else ""
            raise WorkspaceError(f"no finished run in {self.runs_dir}{unfinished}: train one with `recx train`")
        return max(done, key=lambda p: (p / BEST).stat().st_mtime)


def run_finished(run_dir: str | os.PathLike) -> bool:
    """Whether a run's training ended (``finished.json``); runs made before that marker
    (config.json without ``run_format`` 2) count as finished when they have a best checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / FINISHED).is_file():
        return True
    try:
        saved = json.loads((run_dir / RUN_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and int(saved.get("run_format", 1)) < 2 and (run_dir / BEST).is_file()
