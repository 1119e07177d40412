"""`recx study` end to end on a tiny workspace: outputs, pruning, resume of a dead trial, refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from study_workspace import CliOutput, invoke

pytest.importorskip("optuna")

FAST = ["--set", "epochs=3", "--set", "hidden=16", "--set", "batch_size=32", "--set", "eval_batch_size=256", "-q"]


def plan_for(ws: Path, trials: int, epochs: int, **kw):
    from recx.study.candidates import Candidate
    from recx.study.plan import StudyPlan
    from recx.study.storage import default_url
    from recx.trainer.cli import workspace_layer

    out = ws / "study"
    fixed = {"epochs": epochs, "hidden": 16, "batch_size": 32, "patience": 0, **kw.pop("fixed", {})}
    return StudyPlan([Candidate("sasrec", "id", "debiased_ce")], out, default_url(out), workspace_layer(), fixed, trials=trials,
                     seeds=1, progress=False, **kw)


def open_candidate(plan):
    from recx.study.run import identity
    from recx.study.storage import candidate_study, open_storage

    storage = open_storage(plan.storage)
    ident = identity(plan)
    return storage, ident, candidate_study(storage, plan.candidates[0], ident)


def test_study_writes_verdict_and_reports_and_a_rerun_changes_nothing(workspace):
    pytest.importorskip("tensorboard")
    out = invoke(["study", "--towers", "id,id+text", "--trials", "2", "--seeds", "2", "--log", "tensorboard", *FAST])
    results = json.loads((workspace / "study" / "results.json").read_text())
    assert sorted(c["tower"] for c in results["candidates"]) == ["id", "id+text"]
    assert results["verdict"] in out and results["pairs"][0]["sentence"] in out
    ndcgs = [c["metrics"]["ndcg@10"] for c in results["candidates"]]
    assert ndcgs == sorted(ndcgs, reverse=True)  # ranked by test NDCG@10
    for c in results["candidates"]:
        assert c["trials"] == {"COMPLETE": 2} and [s["seed"] for s in c["seeds"]] == [42, 1]
        assert c["space"].keys() == ({"lr", "weight_decay", "dropout", "temperature"} | ({"whiten", "adapter"} if c["tower"] == "id+text" else set()))
        assert c["best_trial"]["params"]["lr"] == pytest.approx(1e-3) or c["best_trial"]["number"] != 0  # trial 0: the defaults
        assert len(c["curve"]) == 3 and c["ci95"]["ndcg@10"][0] <= c["metrics"]["ndcg@10"] <= c["ci95"]["ndcg@10"][1]
        mean = sum(s["ndcg@10"] for s in c["seeds"]) / 2
        assert c["metrics"]["ndcg@10"] == pytest.approx(mean)  # per-user mean over seeds, then over users
        for s in c["seeds"]:
            assert (Path(s["run"]) / "results.json").is_file()
    assert len(results["pairs"]) == 1 and results["pairs"][0]["sentence"].split()[1] in ("beats", "trails", "ties")
    page = (workspace / "study" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "src=\"http" not in page  # self-contained
    assert results["verdict"] in (workspace / "study" / "report.md").read_text()

    trial_runs = sorted((workspace / "study" / "runs").glob("*/trial-*"))
    assert len(trial_runs) == 4 and all(any((run / "tensorboard").iterdir()) for run in trial_runs)  # one tracked run per trial
    invoke(["study", "--towers", "id,id+text", "--trials", "2", "--seeds", "2", "--log", "tensorboard", *FAST])  # the same command again
    again = json.loads((workspace / "study" / "results.json").read_text())
    assert [c["trials"] for c in again["candidates"]] == [c["trials"] for c in results["candidates"]]  # no trial rerun
    assert [c["metrics"] for c in again["candidates"]] == [c["metrics"] for c in results["candidates"]]


def test_pruning_stops_a_hopeless_trial(workspace):
    from recx.study.search import WARMUP_EPOCHS, search
    from recx.trainer.checkpoint import read_metrics

    plan = plan_for(workspace, trials=2, epochs=WARMUP_EPOCHS + 4)
    storage, ident, study = open_candidate(plan)
    study.enqueue_trial({"lr": 5e-3, "dropout": 0.2, "weight_decay": 0.0, "temperature": 0.0})
    study.enqueue_trial({"lr": 1e-4, "dropout": 0.6, "weight_decay": 0.1, "temperature": 0.0})  # learns next to nothing
    search(plan, storage, plan.candidates[0], ident, 0)
    good, hopeless = study.get_trials()
    assert good.state.name == "COMPLETE" and hopeless.state.name == "PRUNED"
    assert len(read_metrics(Path(good.user_attrs["run_dir"]))) == WARMUP_EPOCHS + 4
    assert len(read_metrics(Path(hopeless.user_attrs["run_dir"]))) == WARMUP_EPOCHS + 1  # stopped at the first judged validation


def test_a_dead_trial_is_retried_and_resumes_its_run(workspace, monkeypatch):
    """A trial whose process died (no heartbeat, state RUNNING) is failed, queued again with its
    parameters, and the retry resumes the dead trial's run: the result equals an uninterrupted run."""
    import recx.study.storage as storage_mod
    from recx.study.search import candidate_space, search
    from recx.trainer.loop import fit
    from recx.trainer.space import suggest

    monkeypatch.setattr(storage_mod, "GRACE_S", 1)
    monkeypatch.setattr(storage_mod, "HEARTBEAT_S", 1)
    plan = plan_for(workspace, trials=1, epochs=4)
    storage, ident, study = open_candidate(plan)
    cand = plan.candidates[0]
    params = {"lr": 3e-3, "dropout": 0.3, "weight_decay": 0.0, "temperature": 0.0}
    study.enqueue_trial(params)
    dead = study.ask()  # as the killed process left it: RUNNING, two epochs checkpointed
    assert suggest(dead, candidate_space(plan, cand)) == params
    run_dir = plan.runs / cand.key / "trial-000"
    dead.set_user_attr("run_dir", str(run_dir))
    fit(plan.config(cand, params, "trial-000"), run_dir=run_dir, progress=False, max_epochs_this_call=2)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)

    search(plan, storage, cand, ident, 0)
    first, retry = study.get_trials()
    assert first.state.name == "FAIL" and retry.state.name == "COMPLETE" and retry.params == params
    assert retry.user_attrs["run_dir"] == str(run_dir)
    reference = fit(plan.config(cand, params, "reference"), progress=False)
    assert retry.value == pytest.approx(reference.best_valid["ndcg@10"], abs=1e-12)


def test_a_storage_of_another_dataset_or_other_fixed_options_is_refused(workspace, tmp_path, monkeypatch):
    invoke(["study", "--towers", "id", "--trials", "1", "--seeds", "1", *FAST])
    url = f"sqlite:///{workspace / 'study' / 'study.db'}"
    changed = CliOutput(["study", "--towers", "id", "--trials", "1", "--seeds", "1", *FAST, "--set", "dropout=0.2"])
    assert changed.code == 1 and "fixed other options" in changed.text and "\n" not in changed.text.strip()

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    invoke(["data", "synth", "--out", "data", "--items", "60", "--users", "50", "--seed", "9"])
    refused = CliOutput(["study", "--towers", "id", "--storage", url, *FAST])
    assert refused.code == 1 and "was run on another dataset" in refused.text


def test_clear_errors(workspace, tmp_path, monkeypatch):
    bad = CliOutput(["study", "--set", "nope=1"])
    assert bad.code == 1 and "--set 'nope=1': expected OPTION=VALUE" in bad.text
    bad = CliOutput(["study", "--set", "epochs=many"])
    assert bad.code == 1 and "'many' is not a valid int for --epochs" in bad.text
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    invoke(["data", "synth", "--out", "data", "--items", "60", "--users", "50"])
    missing = CliOutput(["study", "--towers", "id,text"])
    assert missing.code == 1 and "the workspace has no text store; run `recx featurize`" in missing.text

