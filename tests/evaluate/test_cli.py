"""`recx eval` (recx.evalrun) on arrays: evaluate_models directly, and the typer command with
load_embeddings replaced by in-memory embeddings (run folders: tests/inference/test_run_options.py)."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from recx.data.dataset import Item, write_dataset
from recx.evalrun import cli as eval_cli
from recx.evalrun.compare import EvalOptions, ModelInput, evaluate_models
from recx.evaluate.protocol import EvalError


@pytest.fixture
def dataset(tmp_path):
    seqs = [[1, 1, 2, 3, 4], [2, 3, 4, 1], [1, 2, 3]]
    return write_dataset(tmp_path / "ds", [Item(id=f"i{i}") for i in range(1, 5)], ["a", "b", "c"], seqs, {"source": "test", "name": "tiny"})


def embeddings(dataset, scores_per_item, name):
    """1-D embeddings: every user gets the same ranking given by ``scores_per_item``."""
    histories, targets = dataset.split("test")
    table = np.array([[0.0]] + [[s] for s in scores_per_item], dtype=np.float32)
    return SimpleNamespace(
        user_vectors=np.ones((len(targets), 1), np.float32), item_table=table, targets=targets,
        histories=histories, dataset=dataset, config={"name": name, "item_tower": "id", "loss": "bce"},
    )


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=200)


def test_evaluate_models_table_and_results(tmp_path, dataset):
    # test targets are 4, 1, 3
    a = embeddings(dataset, [4.0, 3.0, 2.0, 1.0], "a")  # ranks 4, 1, 3
    b = embeddings(dataset, [1.0, 2.0, 3.0, 4.0], "b")  # ranks 1, 4, 2
    (tmp_path / "ra").mkdir()
    console = Console(record=True, width=200)
    out = evaluate_models(
        [ModelInput("a", a, tmp_path / "ra"), ModelInput("b", b)],
        EvalOptions(ks=(1, 2), n_boot=100), console=console, compare=True,
        per_user=tmp_path / "pu.csv", plot=tmp_path / "k.png",
    )
    assert out["results"]["a"].ranks.tolist() == [4.0, 1.0, 3.0]
    assert out["results"]["b"].ranks.tolist() == [1.0, 4.0, 2.0]
    assert list(out["results"]) == ["Random", "Pop", "Pop (recent)", "a", "b"]
    saved = json.loads((tmp_path / "ra" / "results.json").read_text())
    assert saved["metrics"]["hr@1"] == pytest.approx(1 / 3) and saved["dataset"]["name"] == "tiny"
    assert saved["dataset"]["fingerprint"] == dataset.fingerprint
    p = out["paired"]["hr@2"]
    assert p["mean_a"] == pytest.approx(1 / 3) and p["mean_b"] == pytest.approx(2 / 3) and p["improv"] == pytest.approx(1.0)
    text = console.export_text()
    assert "Improv." in text and "Pop" in text and "b vs a" in text
    assert (tmp_path / "k.png").stat().st_size > 0
    assert len((tmp_path / "pu.csv").read_text().splitlines()) == 1 + 5 * 3


def test_evaluate_models_rejects_mismatched_targets(tmp_path, dataset):
    a = embeddings(dataset, [4.0, 3.0, 2.0, 1.0], "a")
    b = embeddings(dataset, [4.0, 3.0, 2.0, 1.0], "b")
    b.targets = b.targets[::-1].copy()
    with pytest.raises(EvalError, match="same users"):
        evaluate_models([ModelInput("a", a), ModelInput("b", b)], EvalOptions(n_boot=0), console=quiet())


def test_eval_command_options(tmp_path, dataset, monkeypatch):
    loaded = []

    def fake_load(run_dir, split, dataset_dir=None, device=None):
        loaded.append((Path(run_dir).name, split, dataset_dir, device))
        scores = [4.0, 3.0, 2.0, 1.0] if Path(run_dir).name == "ra" else [1.0, 2.0, 3.0, 4.0]
        return embeddings(dataset, scores, "same-name")

    monkeypatch.setattr("recx.evalrun.runs.load_embeddings", fake_load)
    monkeypatch.chdir(tmp_path)
    for d in ("ra", "rb"):
        (tmp_path / d).mkdir()
    import typer

    app = typer.Typer()
    app.command()(eval_cli.eval_command)
    r = CliRunner().invoke(app, ["--compare", "ra", "rb", "--k", "1", "--k", "2", "--bootstrap", "50", "--exclude-history"])
    assert r.exit_code == 0, r.output
    assert loaded == [("ra", "test", None, "auto"), ("rb", "test", None, "auto")]
    rec = json.loads((tmp_path / "rb" / "results.json").read_text())
    assert rec["run"] == "rb" and rec["ks"] == [1, 2] and rec["exclude_history"] is True  # duplicate names -> folder names
    assert "rb vs ra" in r.output

    r = CliRunner().invoke(app, ["--run", "ra", "--split", "train"])
    assert r.exit_code == 1 and "--split must be valid or test" in r.output
    r = CliRunner().invoke(app, ["--run", "ra", "--index", "lsh"])
    assert r.exit_code == 1 and "--index must be" in r.output


def test_eval_command_without_workspace_or_run(tmp_path, monkeypatch):
    import typer

    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.command()(eval_cli.eval_command)
    r = CliRunner().invoke(app, [])
    assert r.exit_code == 1 and "recx.toml" in r.output


def test_eval_passes_dataset_and_device_and_quiet_drops_the_wrote_lines(tmp_path, dataset, monkeypatch):
    import typer

    loaded = []

    def fake_load(run_dir, split, dataset_dir=None, device=None):
        loaded.append((dataset_dir, device))
        return embeddings(dataset, [4.0, 3.0, 2.0, 1.0], "a")

    monkeypatch.setattr("recx.evalrun.runs.load_embeddings", fake_load)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ra").mkdir()
    app = typer.Typer()
    app.command()(eval_cli.eval_command)
    r = CliRunner().invoke(app, ["--run", "ra", "--dataset", "elsewhere", "--device", "cpu", "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    assert loaded == [(Path("elsewhere"), "cpu")] and "wrote " in r.output
    r = CliRunner().invoke(app, ["--run", "ra", "--bootstrap", "0", "-q"])
    assert r.exit_code == 0, r.output
    assert "wrote " not in r.output and "Pop" in r.output  # the table stays


def test_eval_seed_defaults_to_the_vocabulary_seed(tmp_path, dataset, monkeypatch):
    import typer

    from recx.options import DEFAULT_SEED

    monkeypatch.setattr("recx.evalrun.runs.load_embeddings", lambda *a, **k: embeddings(dataset, [4.0, 3.0, 2.0, 1.0], "a"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ra").mkdir()
    app = typer.Typer()
    app.command()(eval_cli.eval_command)
    r = CliRunner().invoke(app, ["--run", "ra", "--bootstrap", "20", "--no-baselines"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ra" / "results.json").read_text())["bootstrap"]["seed"] == DEFAULT_SEED == EvalOptions().seed
