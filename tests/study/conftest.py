"""A tiny workspace for study tests: a synthetic catalog with a random text store."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_workspace import add_text_store, invoke


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A synthetic workspace (90 items, 80 users) with a text store; the current folder."""
    monkeypatch.chdir(tmp_path)
    invoke(["data", "synth", "--out", "data", "--items", "90", "--users", "80", "--seed", "3"])
    add_text_store(tmp_path)
    return tmp_path
