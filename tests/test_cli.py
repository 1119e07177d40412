"""The `recx` entry point: renamed options answered in one line, and one command vocabulary
(recx/options.py) across the commands."""

from __future__ import annotations

import sys

import pytest
import typer

import recx.cli
from recx.options import DEFAULT_SEED


@pytest.mark.parametrize("argv, old, new", [
    (["featurize", "--compute-dtype", "float32"], "--compute-dtype", "--precision (auto | fp32 | bf16 | fp16)"),
    (["featurize", "--dtype=float32"], "--dtype", "--store-dtype"),
    (["featurize", "--max-length", "8"], "--max-length", "--max-len (items) or --max-tokens (featurize: tokens per text)"),
    (["data", "import", "csv", "x.csv", "--max-length", "5"], "--max-length", "--max-len"),
    (["ensemble", "runs/a", "--out", "e", "--overwrite"], "--overwrite", "--force"),
    (["train", "--amp", "bf16"], "--amp", "--precision"),
])
def test_a_renamed_flag_is_one_line_naming_the_new_one(argv, old, new, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["recx", *argv])
    with pytest.raises(SystemExit) as exit_:
        recx.cli.main()
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"recx: {old} was renamed: use ") and new in err


def test_resume_with_a_run_after_it_names_the_new_spelling(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["recx", "train", "--resume", "runs/cut"])
    with pytest.raises(SystemExit) as exit_:
        recx.cli.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`recx train --resume --run runs/cut`" in err


def test_current_flags_pass_through(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["recx", "featurize", "--help"])
    with pytest.raises(SystemExit) as exit_:
        recx.cli.main()
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--precision" in out and "--store-dtype" in out and "--max-tokens" in out


def _options(*path: str) -> dict[str, object]:
    """{option string: click parameter} of the command ``recx PATH...``."""
    command = typer.main.get_command(recx.cli.app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}


OUT = [("featurize",), ("export",), ("ensemble",), ("data", "synth"), ("data", "import"), ("quickstart",)]
FORCE = OUT
RUN = [("eval",), ("recommend",), ("export",), ("ensemble",)]
DATASET_DEVICE = [("eval",), ("recommend",), ("export",), ("ensemble",), ("featurize",)]
QUIET = [("eval",), ("export",), ("ensemble",), ("featurize",), ("data", "synth"), ("data", "import"), ("quickstart",)]
SEED = [("eval",), ("ensemble",), ("data", "synth"), ("quickstart",)]


@pytest.mark.parametrize("path", OUT)
def test_every_output_path_is_o_out(path):
    opts = _options(*path)
    assert opts["-o"] is opts["--out"]


@pytest.mark.parametrize("path", FORCE)
def test_every_replace_is_force(path):
    assert "--force" in _options(*path) and "--overwrite" not in _options(*path)


@pytest.mark.parametrize("path", RUN)
def test_every_run_is_run(path):
    assert "--run" in _options(*path)


@pytest.mark.parametrize("path", DATASET_DEVICE)
def test_dataset_and_device(path):
    opts = _options(*path)
    assert "--dataset" in opts and opts["--device"].default == "auto"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", QUIET)
def test_quiet(path):
    opts = _options(*path)
    assert opts["-q"] is opts["--quiet"]


@pytest.mark.parametrize("path", SEED)
def test_one_default_seed(path):
    assert _options(*path)["--seed"].default == DEFAULT_SEED  # type: ignore[attr-defined]


def test_no_old_spelling_is_left_on_these_commands():
    old = {"--compute-dtype", "--dtype", "--overwrite", "--max-length", "--amp", "--dir"}
    for path in {*OUT, *RUN, *QUIET, ("models",)}:
        assert not old & set(_options(*path)), path
