"""The checks every fault case makes, and how it runs recx (in process, or as a process to kill)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from typer.testing import CliRunner, Result

from recx.cli import app

TRAIN = ["--epochs", "2", "--hidden", "16", "--layers", "1", "--heads", "2", "--max-len", "8", "--batch-size", "32", "--quiet"]


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(args: list[str]) -> Result:
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return result


def error_line(result: Result, *names: object, exit_code: int = 1) -> str:
    """The case failed as recx promises: ``exit_code``, exactly one ``error:`` line naming each of
    ``names``, and no traceback; returns that line."""
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for name in names:
        assert str(name) in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (what 'nothing changed' compares)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def recx_process(args: list[str], cwd: Path, **kw) -> subprocess.Popen:
    """``recx ARGS`` as its own process (for kill -9 cases)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "recx.cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
