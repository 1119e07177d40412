"""The commands a user types: recx pretrain --domains A B, recx train --model reo-lm --init, recx eval."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recx.cli import app


def test_pretrain_train_eval_commands(synth_dir, lm_dir, tmp_path, monkeypatch):
    from recx.data.synth import synthesize

    other = synthesize(tmp_path / "other", num_items=40, num_users=30, seed=1, image_size=16).path
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    small = ["--lm", str(lm_dir), "--item-tokens", "16", "--user-tokens", "64", "--max-len", "4"]
    r = runner.invoke(app, ["pretrain", "--domains", str(synth_dir), str(other), "--out", "ckpt", "--epochs", "1", "--steps-per-epoch", "2",
                            "--batch-size", "8", "--precision", "fp32", "--quiet", *small])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert [d["items"] for d in saved["domains"]] == [60, 40]
    r = runner.invoke(app, ["train", "--dataset", str(synth_dir), "--model", "reo-lm", "--init", "ckpt", "--epochs", "1", "--temperature", "0.05",
                            "--batch-size", "64", "--precision", "fp32", "--name", "ft", "--quiet", *small])
    assert r.exit_code == 0, r.output
    from recx.data.dataset import SequenceDataset
    from tiny_models import write_random_image_store

    store = write_random_image_store(SequenceDataset(synth_dir), tmp_path / "img.h5")
    r = runner.invoke(app, ["train", "--dataset", str(synth_dir), "--model", "reo-lm", "--store", f"image={store}", "--store", "text=x.h5",
                            "--epochs", "1", "--temperature", "0.05", "--batch-size", "64", "--precision", "fp32", "--name", "img", "--quiet", *small])
    assert r.exit_code == 0, r.output
    from recx.trainer.checkpoint import load_run_config

    assert json.loads((tmp_path / "runs" / "img" / "config.json").read_text())["config"]["run"]["stores"] == {"image": "../../img.h5"}
    assert load_run_config(tmp_path / "runs" / "img").run.stores == {"image": str(store)}  # only the store it reads, found again
    r = runner.invoke(app, ["eval", "--run", "runs/ft", "--k", "10", "--bootstrap", "0", "--no-baselines"])
    assert r.exit_code == 0, r.output
    assert 0.0 <= json.loads((tmp_path / "runs" / "ft" / "results.json").read_text())["metrics"]["ndcg@10"] <= 1.0
    # a checkpoint of another backbone: one red line naming the file
    r = runner.invoke(app, ["train", "--dataset", str(synth_dir), "--model", "reo-lm", "--init", "ckpt", "--lm", "all-MiniLM-L6-v2", "--epochs", "1", "--name", "bad"])
    assert r.exit_code == 1 and "ckpt/config.json: pretrained backbone" in r.output
