"""benchmarks/reolm.py never reports a row over inputs that changed under it: a warm-started row
whose source trained on since it started, or a cached comparison older than a best checkpoint."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("reolm_benchmark", ROOT / "benchmarks" / "reolm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_warm_started_row_stops_when_its_source_changed(bench, tmp_path):
    source = tmp_path / "runs" / "window"
    source.mkdir(parents=True)
    (source / "best.pt").write_bytes(b"epoch 1")
    run, settings = tmp_path / "runs" / "s2-window", {"warm_start": "runs/window"}
    bench.check_warm_start(tmp_path, run, settings)  # a new row: stamps its source
    assert (tmp_path / "warm-starts" / "s2-window.sha256").is_file()
    run.mkdir()
    (run / "config.json").write_text("{}")
    bench.check_warm_start(tmp_path, run, settings)  # unchanged: goes on
    (source / "best.pt").write_bytes(b"epoch 2")
    with pytest.raises(SystemExit, match="has changed since"):
        bench.check_warm_start(tmp_path, run, settings)
    (tmp_path / "warm-starts" / "s2-window.sha256").unlink()  # a row started before stamps existed
    with pytest.raises(SystemExit, match="move .* aside"):
        bench.check_warm_start(tmp_path, run, settings)
    bench.check_warm_start(tmp_path, tmp_path / "runs" / "window", {})  # no warm start: nothing to check


def make_runs(root: Path, *names: str, weights: str) -> list[Path]:
    """Run folders ``root/runs/NAME``, each with a weights file ``weights``."""
    runs = []
    for name in names:
        run = root / "runs" / name
        run.mkdir(parents=True)
        (run / weights).write_bytes(b"weights")
        runs.append(run)
    return runs


def test_a_cached_comparison_older_than_a_best_checkpoint_is_made_again(bench, tmp_path, monkeypatch):
    base, run = make_runs(tmp_path, "sasrec-id", "window", weights="best.pt")
    (run / "results.json").write_text('{"metrics": {}}')
    calls = []

    def fake_recx(*args, cwd, capture=False):
        calls.append(args)
        (run / "compare-sasrec-per-user.csv").write_text("model,ndcg@10\nsasrec-id,0.5\nwindow,0.25\n")
        return "the table\n"

    monkeypatch.setattr(bench, "recx", fake_recx)
    bench.compare(tmp_path, base, run)
    bench.compare(tmp_path, base, run)
    assert len(calls) == 1  # cached
    later = (run / "compare-sasrec.txt").stat().st_mtime_ns + 10**9
    os.utime(run / "best.pt", ns=(later, later))  # the run trained on
    bench.compare(tmp_path, base, run)
    assert len(calls) == 2


def test_a_finished_row_asked_for_more_epochs_trains_on(bench, tmp_path, monkeypatch):
    run, base = make_runs(tmp_path, "window", "sasrec-id", weights="last.pt")
    (run / "finished.json").write_text('{"epochs_run": 4, "stopped_early": false}')
    (base / "finished.json").write_text("{}")
    calls = []
    monkeypatch.setattr(bench, "recx", lambda *args, cwd, capture=False: calls.append(args))
    bench.train(tmp_path, "window", {"epochs": 4})
    bench.train(tmp_path, "sasrec-id", {})  # no epochs asked: finished is enough
    assert calls == []
    bench.train(tmp_path, "window", {"epochs": 6})
    assert calls == [("train", "--resume", "--run", str(run), "--epochs", "6", "-q")]
    (run / "finished.json").write_text('{"epochs_run": 5, "stopped_early": true}')
    bench.train(tmp_path, "window", {"epochs": 6})  # it stopped early: more epochs would not train
    assert len(calls) == 1


def test_a_run_of_other_settings_is_not_reported_as_the_row(bench, tmp_path):
    from recx.trainer.checkpoint import write_run_config
    from recx.trainer.config import TrainConfig

    run = tmp_path / "runs" / "sasrec-id"
    run.mkdir(parents=True)
    write_run_config(run, TrainConfig.from_options(model="sasrec", batch_size=256), {})
    bench.check_settings(run, {"batch_size": 256})
    bench.check_settings(run, {})  # the row pins no batch
    bench.check_settings(run, {"batch_size": 256, "epochs": 9, "warm_start": "runs/x"})  # a resume's epochs; paths have their own check
    with pytest.raises(SystemExit, match="trained with batch_size 256, the row asks 32: move .* aside"):
        bench.check_settings(run, {"batch_size": 32})
    with pytest.raises(SystemExit, match="config.json: trained with user_items 9, the row asks 3"):
        bench.check_settings(run, {"model": "sasrec", "user_items": 3})


def test_every_row_is_a_valid_recx_train_command(bench):
    """Each row's flags parse as `recx train` options: a boolean is a bare --flag / --no-flag."""
    from recx.trainer.config import TrainConfig

    assert bench.flags({"reo_item_ids": True, "batch_size": 32}) == ["--reo-item-ids", "--batch-size", "32"]
    assert bench.flags({"reo_item_ids": False}) == ["--no-reo-item-ids"]
    for name, settings in bench.ROWS.items():
        options = {k: v for k, v in settings.items() if k not in ("warm_start", "init")}
        cfg = TrainConfig.from_options(**options)  # raises on an unknown option or a bad combination
        assert cfg.inapplicable(set(options)) == [], name  # `recx train` refuses an option that does not apply


def test_each_row_keeps_the_baseline_it_was_paired_with(bench, tmp_path):
    """A new session retrains SASRec ID: rows recorded before keep the baseline of their time."""
    import json

    def record(name, diff, **extra):
        return {"dataset": "amazon-scientific", "name": name, "settings": {}, "hr@10": 0.1, "ndcg@10": 0.05, "ndcg@10_ci95": [0.04, 0.06],
                "mrr": 0.04, "p_vs_sasrec_id": 0.5, "diff_vs_sasrec_id": diff, "train_seconds": 10.0, "validations": 1, "finished": True,
                "best_epoch": 0, "seconds_per_interval": 10.0, "tokens_per_s": 100.0, "valid_curve": [0.05], "threads": 1,
                "measured": "2026-12-07", **extra}

    docs = tmp_path / "docs"
    docs.mkdir()
    peak = {"fp32": 100.0, "bf16": 200.0}
    old = {"matmul_gflops": peak, "sasrec_id": {"amazon-scientific": {"ndcg@10": 0.0584, "hr@10": 0.1}}, "rows": [record("window", -0.0034)]}
    (docs / "reolm.json").write_text(json.dumps(old))
    new = record("s2-ids", 0.001, **{"sasrec_id_ndcg@10": 0.0592, "warm_start_validations": 3})
    payload = bench.merged(docs / "reolm.json", [new], {"amazon-scientific": {"ndcg@10": 0.0592, "hr@10": 0.1}})
    assert {r["name"]: r["sasrec_id_ndcg@10"] for r in payload["rows"]} == {"window": 0.0584, "s2-ids": 0.0592}
    bench.write_docs(payload, docs)
    text = (docs / "reolm.md").read_text()
    assert "| window | 0.1000 | 0.0500 [0.0400, 0.0600] | 0.0400 | -0.0034 vs 0.0584 (0.5) |" in text
    assert "| s2-ids (stage 1: 3 validations) | 0.1000 | 0.0500 [0.0400, 0.0600] | 0.0400 | +0.0010 vs 0.0592 (0.5) |" in text


def test_rows_are_paired_from_their_comparison_csvs(bench, tmp_path, capsys):
    """--pairs A:B tests B - A on the per-user NDCG@10 the rows' `recx eval --compare` wrote;
    SASRec ID's values come from the other row's CSV; a run folder moved aside keeps its row's."""
    import numpy as np

    from recx.evaluate.stats import paired_test

    rng = np.random.default_rng(0)
    base, a, b = (np.round(rng.random(40), 5) for _ in range(3))  # what the CSV holds exactly
    for folder, name, values in (("window-3ep", "window", a), ("s2-ids", "s2-ids", b)):
        run = tmp_path / "runs" / folder
        run.mkdir(parents=True)
        lines = ["model,user,user_id,target,rank,ndcg@10"]
        lines += [f"{model},{u},u{u},1,1,{v:.6g}" for model, vals in (("sasrec-id", base), (name, values)) for u, v in enumerate(vals)]
        (run / "compare-sasrec-per-user.csv").write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(bench.per_user_ndcg(tmp_path / "runs" / "window-3ep", baseline=True), base)
    bench.pair_rows(tmp_path, "window-3ep:s2-ids,sasrec-id:s2-ids")
    out = capsys.readouterr().out.splitlines()
    for line, (x, y) in zip(out, ((a, b), (base, b))):
        r = paired_test({"ndcg@10": x}, {"ndcg@10": y}, 1000, seed=42)["ndcg@10"]
        assert f"= {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p {r['p_permutation']:.3g}" in line
    with pytest.raises(SystemExit, match="runs/missing/compare-sasrec-per-user.csv: missing; rank the row first"):
        bench.pair_rows(tmp_path, "missing:s2-ids")
