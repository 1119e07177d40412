"""Helpers of the study tests (tests/study/): CLI calls and a random text store in a workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from recx.cli import app


def invoke(args: list[str], ok: bool = True) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


def add_text_store(ws: Path, dim: int = 12) -> Path:
    """A random text store of the workspace's dataset, recorded under [stores] of recx.toml."""
    from recx.data.dataset import SequenceDataset
    from recx.featurize.store import StoreWriter
    from recx.workspace import Workspace

    ds = SequenceDataset(ws / "data")
    n = ds.num_items
    path = ws / "stores" / "random.h5"
    path.parent.mkdir(exist_ok=True)
    rows = np.arange(1, n + 1, dtype=np.int64)
    attrs = {"modality": "text", "catalog_fingerprint": ds.catalog_fingerprint, "item_count": n, "encoder": "random"}
    w = StoreWriter(path, n + 1, dim, attrs, dtype="float32", planned=len(rows))
    w.write_rows(rows, np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32))
    w.finish()
    Workspace.find(ws).record_store("text", path)
    return path


class CliOutput:
    """A `recx` command that may fail: its exit code and its output."""

    def __init__(self, args: list[str]):
        result = CliRunner().invoke(app, args)
        self.code, self.text = result.exit_code, result.output
