import json

from typer.testing import CliRunner

from recx.cli import app
from recx.workspace import Workspace

runner = CliRunner()


def test_synth_then_info_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["data", "synth", "--out", "data", "--items", "60", "--users", "30", "--seed", "2"])
    assert r.exit_code == 0, r.output
    assert "users         30" in r.output
    ws = Workspace.find(tmp_path)
    assert ws.dataset_dir == tmp_path / "data"
    assert ws.config["train"]["item_tower"] == "id+text" and "whiten" not in ws.config["train"]
    meta = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert meta["counts"]["users"] == 30 and meta["source"]["seed"] == 2

    r = runner.invoke(app, ["data", "info", "data", "--plot", "plot.png"])
    assert r.exit_code == 0, r.output
    assert "items         60" in r.output and "top 1% of items" in r.output
    assert (tmp_path / "plot.png").stat().st_size > 1000

    r = runner.invoke(app, ["data", "synth", "--out", "data", "--items", "60", "--users", "30"])
    assert r.exit_code == 1
    assert "already exists" in r.output


def test_synth_with_explicit_workspace(tmp_path):
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    r = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "d"), "--items", "50", "--users", "10", "--workspace", str(ws_dir)])
    assert r.exit_code == 0, r.output
    assert Workspace.load(ws_dir).dataset_dir.resolve() == (tmp_path / "d").resolve()


def test_info_on_a_missing_dataset_is_one_line_error(tmp_path):
    r = runner.invoke(app, ["data", "info", str(tmp_path / "nope")])
    assert r.exit_code == 1
    assert "not a recx dataset" in r.output


def test_import_unknown_format_and_option(tmp_path):
    r = runner.invoke(app, ["data", "import", "nosuch", str(tmp_path), "--out", str(tmp_path / "o"), "--workspace", str(tmp_path)])
    assert r.exit_code == 1 and "unknown import format 'nosuch'" in r.output


def test_synth_default_seed_is_the_vocabulary_seed_and_quiet_prints_two_lines(tmp_path, monkeypatch):
    from recx.data.synth import synthesize
    from recx.options import DEFAULT_SEED

    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["data", "synth", "-o", "data", "--items", "50", "--users", "10", "-q"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("wrote ")  # the headline and where it went
    meta = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert meta["source"]["seed"] == DEFAULT_SEED
    assert synthesize(tmp_path / "again", num_items=50, num_users=10).fingerprint == meta["fingerprint"]


def test_import_max_len_keeps_the_most_recent_items(tmp_path):
    from recx.data.dataset import SequenceDataset

    rows = "".join(f"u{u},i{i},{100 * u + i}\n" for u in range(4) for i in range(6))
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp\n" + rows)
    r = runner.invoke(app, ["data", "import", "csv", str(tmp_path / "inter.csv"), "-o", str(tmp_path / "d"), "--max-len", "4",
                            "--workspace", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    assert len(r.output.strip().splitlines()) == 2
    ds = SequenceDataset(tmp_path / "d")
    assert [len(ds.sequence(u)) for u in range(ds.num_users)] == [4] * 4
    r = runner.invoke(app, ["data", "import", "csv", str(tmp_path / "inter.csv"), "-o", str(tmp_path / "e"), "--max-len", "2",
                            "--workspace", str(tmp_path)])
    assert r.exit_code == 1 and "--max-len" in r.output
