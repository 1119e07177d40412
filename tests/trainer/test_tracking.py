"""`recx train --log tensorboard | mlflow`: what each backend records, and a resumed run logging on."""

from __future__ import annotations

import pytest

from recx.trainer import TrainConfig, fit


def config(dataset, tmp_path, **kw):
    return TrainConfig.from_options(dataset=str(dataset.path), hidden=16, layers=1, heads=2, max_len=8, epochs=3, batch_size=16,
                                    runs_dir=str(tmp_path / "runs"), name="run", seed=0, **kw)


@pytest.fixture
def dataset(tmp_path, make_text_dataset):
    return make_text_dataset(tmp_path, n_items=30, n_users=24)


def test_tensorboard_event_files_hold_every_validation(dataset, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = fit(config(dataset, tmp_path, log="tensorboard"), progress=False)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    valid = events.Scalars("valid/ndcg@10")
    assert [e.step for e in valid] == [0, 1, 2]
    from recx.trainer.checkpoint import read_metrics

    assert [e.value for e in valid] == pytest.approx([r["valid"]["ndcg@10"] for r in read_metrics(result.run_dir)])
    assert [e.step for e in events.Scalars("loss")] == [0, 1, 2]


def test_mlflow_run_continues_after_resume(dataset, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from recx.trainer.checkpoint import read_metrics

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = config(dataset, tmp_path, log="mlflow", log_uri=uri)
    run_dir = tmp_path / "runs" / "run"
    fit(cfg, run_dir=run_dir, progress=False, max_epochs_this_call=2)  # interrupted after two validations
    fit(cfg, run_dir=run_dir, resume=True, progress=False)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("recx").experiment_id])
    history = client.get_metric_history(run.info.run_id, "valid/ndcg_at_10")
    assert [m.step for m in history] == [0, 1, 2]  # one run, no epoch twice
    assert [m.value for m in history] == pytest.approx([r["valid"]["ndcg@10"] for r in read_metrics(run_dir)])
    assert run.data.params["hidden"] == "16" and run.data.params["log"] == "mlflow" and run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["curve.png"]


def test_missing_backend_is_refused_before_the_run(dataset, tmp_path, monkeypatch):
    import importlib.util

    from recx.trainer.tracking import TrackingError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(TrackingError, match=r"--log mlflow needs the mlflow package: pip install 'recx\[track\]'"):
        fit(config(dataset, tmp_path, log="mlflow"), progress=False)
    assert not (tmp_path / "runs" / "run").exists()


def test_log_uri_applies_only_to_mlflow():
    assert TrainConfig.from_options(log="tensorboard").inapplicable({"log_uri"}) == [
        "--log-uri applies to --log mlflow, not to --model sasrec --loss debiased_ce --item-tower id"]
