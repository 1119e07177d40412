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
    item_tower = "text"
    loss = "debiased_ce"

    [eval]
    k = [10]

Every command looks for ``recx.toml`` in the current folder and its parents; command-line
options override the file.  The file is rewritten atomically when a stage records something
(e.g. `recx featurize` records the store it wrote under ``[stores]``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from recx.errors import RecxError

CONFIG_NAME = "recx.toml"
RUN_CONFIG = "config.json"


class WorkspaceError(RecxError):
    """No workspace, or an inconsistent one; the message says what to run."""


def default_config(dataset: str = "data", has_text: bool = True) -> dict[str, Any]:
    return {
        "workspace": {"dataset": dataset, "stores": "stores", "runs": "runs"},
        "stores": {},
        "featurize": {"model": "minilm"},
        "train": {"item_tower": "text" if has_text else "id", "loss": "debiased_ce"},
        "eval": {"k": [10]},
    }


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        raise WorkspaceError(
            f"no {CONFIG_NAME} in {here} or its parents: start a workspace with "
            "`recx data synth --out data` or `recx data import FORMAT SRC --out data`"
        )

    @classmethod
    def load(cls, root: str | os.PathLike) -> "Workspace":
        path = Path(root) / CONFIG_NAME
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise WorkspaceError(f"{path}: not valid TOML ({e})") from None
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

    def latest_run(self) -> Path:
        """The most recently finished run (has a ``config.json`` and a ``best`` checkpoint)."""
        runs = [p for p in self.runs_dir.glob("*") if (p / RUN_CONFIG).is_file() and (p / "best.pt").is_file()]
        if not runs:
            raise WorkspaceError(f"no finished run in {self.runs_dir}: train one with `recx train`")
        return max(runs, key=lambda p: (p / "best.pt").stat().st_mtime)
