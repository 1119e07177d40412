"""`recx quickstart --dir DIR [--force]`: which folders it may reuse or empty."""

from __future__ import annotations

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
