"""recx.artifacts and recx.errors: atomic writes, what --force may replace, disk faults (ENOSPC
injected, so these run everywhere), and the one-line error report."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from recx.artifacts import (
    DATASET,
    ArtifactError,
    DiskError,
    atomic_folder,
    atomic_write_text,
    check_replaceable,
    remove_stale_partials,
    torch_save,
)
from recx.errors import RecxError, error_line

DEAD_PID = 2 ** 22 + 12345  # above Linux's default pid_max: no such process


def _full_disk(monkeypatch, method: str) -> None:
    def refuse(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, method, refuse)


def test_full_disk_keeps_the_earlier_file_and_leaves_no_partial(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    atomic_write_text(target, "old")
    _full_disk(monkeypatch, "write_text")
    with pytest.raises(DiskError, match=f"^{target}: no space left on device$"):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_torch_save_on_a_full_disk_is_a_disk_error_naming_the_checkpoint(tmp_path, monkeypatch):
    import torch

    target = tmp_path / "last.pt"
    torch_save({"w": torch.ones(3)}, target)
    _full_disk(monkeypatch, "write_bytes")
    with pytest.raises(DiskError, match="last.pt: no space left on device"):
        torch_save({"w": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target)["w"], torch.ones(3)) and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_atomic_folder_publishes_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("v1")
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("v2")
    assert (target / "a").read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["out"]


def _dataset_folder(path: Path) -> Path:
    path.mkdir()
    (path / "dataset.json").write_text(json.dumps({"format_version": 1, "catalog_fingerprint": "a", "fingerprint": "b"}))
    (path / "items.jsonl").write_text("")
    return path


def test_check_replaceable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_replaceable(tmp_path / "absent", DATASET, force=False)
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", DATASET, force=False)
    ours = _dataset_folder(tmp_path / "ours")
    with pytest.raises(ArtifactError, match="already exists; pass --force"):
        check_replaceable(ours, DATASET, force=False)
    check_replaceable(ours, DATASET, force=True)
    (ours / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="also holds notes.txt, which recx did not write"):
        check_replaceable(ours, DATASET, force=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "dataset.json").write_text("{}")  # the marker's name without recx's content
    with pytest.raises(ArtifactError, match="not a recx dataset"):
        check_replaceable(foreign, DATASET, force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="not a folder"):
        check_replaceable(tmp_path / "file", DATASET, force=True)
    with pytest.raises(ArtifactError, match="current folder"):
        check_replaceable(Path("."), DATASET, force=True)
    with pytest.raises(ArtifactError, match="or holds it"):
        check_replaceable(tmp_path.parent, DATASET, force=True)


def test_stale_partials_go_and_live_ones_stay(tmp_path):
    target = tmp_path / "data"
    dead = tmp_path / f".data.partial-{DEAD_PID}-x1"
    dead.mkdir()
    dead_file = tmp_path / f".data.partial-{DEAD_PID}-x2"
    dead_file.write_text("")
    mine = tmp_path / f".data.partial-{os.getpid()}-x3"
    mine.mkdir()
    other_target = tmp_path / f".database.partial-{DEAD_PID}-x4"
    other_target.mkdir()
    assert sorted(remove_stale_partials(target)) == sorted([dead, dead_file])
    assert mine.exists() and other_target.exists()


@pytest.mark.parametrize("exc, line", [
    (RecxError("data/x.json: broken"), "data/x.json: broken"),
    (OSError(errno.ENOSPC, "No space left on device", "/d/f"), "/d/f: no space left on device"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/f"), "/ro/f: read-only file system"),
    (FileNotFoundError(errno.ENOENT, "No such file", "/nope"), "/nope: no such file or directory"),
    (KeyError("unknown item id 'x'"), "unknown item id 'x'"),
])
def test_expected_errors_are_one_line_without_a_log(exc, line):
    assert error_line(exc) == (line, None)


def test_unexpected_errors_write_the_traceback_to_a_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RECX_LOG_DIR", str(tmp_path))
    try:
        {}["x"] = 1 / 0
    except ZeroDivisionError as e:
        line, log = error_line(e)
    assert line.startswith("unexpected ZeroDivisionError: division by zero (full traceback in ") and "RECX_DEBUG=1" in line
    assert log is not None and log.parent == tmp_path and "1 / 0" in log.read_text()
