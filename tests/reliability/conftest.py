"""A small finished workspace (dataset, text store, two runs, an export, an ensemble), built once
per session and copied for each fault case, and a small disk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from reliability.helpers import TRAIN, chdir, ok


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory, tiny_bert) -> Path:
    root = tmp_path_factory.mktemp("reliability") / "ws"
    root.mkdir()
    with chdir(root):
        ok(["data", "synth", "--out", "data", "--items", "80", "--users", "60", "--image-size", "16"])
        ok(["featurize", "--model", tiny_bert, "--out", "stores/text.h5", "--quiet"])
        ok(["train", "--item-tower", "id", "--name", "id", *TRAIN])
        ok(["train", "--item-tower", "text", "--name", "text", *TRAIN])
        ok(["export", "--run", "runs/id", "--out", "export"])
        ok(["ensemble", "runs/id", "runs/text", "--out", "runs/ens", "--select", "equal"])
    return root


@pytest.fixture
def ws(built_workspace, tmp_path, monkeypatch) -> Path:
    """A private copy of the built workspace (absolute paths in its JSON files moved along), as cwd."""
    root = tmp_path / "ws"
    shutil.copytree(built_workspace, root)
    for path in root.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        if str(built_workspace) in text:
            path.write_text(text.replace(str(built_workspace), str(root)), encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.setenv("RECX_LOG_DIR", str(tmp_path / "logs"))
    return root


@pytest.fixture
def small_disk(tmp_path) -> Iterator:
    """small_disk(size) -> a folder on a tmpfs of ``size`` (e.g. "64k"; root on Linux); the case is
    skipped where mounting is not allowed (tests/test_artifacts.py injects ENOSPC instead)."""
    mounts: list[Path] = []

    def make(size: str) -> Path:
        mount = tmp_path / f"small-disk-{len(mounts)}"
        mount.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip() or 'not root'})")
        mounts.append(mount)
        return mount

    yield make
    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
