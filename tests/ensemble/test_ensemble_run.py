"""Ensemble runs end to end on tiny trained runs: build, load, eval, recommend, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recx.cli import app
from recx.data.dataset import Item, write_dataset
from recx.ensemble import EnsembleError, EnsembleOptions, EnsembleUserEncoder, build_ensemble, load_ensemble
from recx.ensemble.selection import metric_of
from recx.evaluate.protocol import evaluate_arrays
from recx.inference.run import export_embeddings, load_run


def _dataset(root, seed: int):
    rng = np.random.default_rng(seed)
    items = [Item(f"i{k}", text=f"item {k}") for k in range(30)]
    seqs = [[int(rng.choice(np.arange(u % 3, 30, 3))) + 1 for _ in range(rng.integers(4, 10))] for u in range(50)]
    return write_dataset(root, items, [f"u{u}" for u in range(50)], seqs, {"name": f"tiny-{seed}"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two members on one dataset (SASRec and GRU4Rec over IDs), and one run on another dataset."""
    from recx.trainer import TrainConfig, fit

    root = tmp_path_factory.mktemp("ensemble")
    ds, other = _dataset(root / "data", 0), _dataset(root / "other", 1)

    def train(dataset, model: str, name: str):
        cfg = TrainConfig.from_options(dataset=str(dataset.path), model=model, hidden=16, layers=1, heads=2, max_len=8, epochs=2, batch_size=16,
                          runs_dir=str(root / "runs"), name=name, seed=0)
        return fit(cfg, progress=False).run_dir

    return {"sasrec": train(ds, "sasrec", "sasrec"), "gru4rec": train(ds, "gru4rec", "gru4rec"),
            "other": train(other, "sasrec", "other"), "root": root}


def _scores(emb) -> np.ndarray:
    """[U, N+1] what a run ranks by: inner products plus its learned history term."""
    import torch

    scores = torch.from_numpy(emb.user_vectors @ emb.item_table.T)
    if emb.history is not None:
        emb.history.add_to(scores)
    return scores.numpy()


def _weighted_scores(record, split: str):
    """sum_m weight_m * scale_m * member score, from the members' own embeddings: [U, N+1]."""
    total = 0.0
    for m in record["members"]:
        e = export_embeddings(m["run"], split)
        total = total + m["weight"] * m["scale"] * _scores(e)
    return total, e.targets


def test_the_ensemble_ranks_like_the_weighted_sum_of_member_scores(runs, tmp_path):
    out = tmp_path / "ens"
    record = build_ensemble([runs["sasrec"], runs["gru4rec"]], out, EnsembleOptions(method="equal"))
    assert [m["name"] for m in record["members"]] == ["sasrec", "gru4rec"]
    assert [m["weight"] for m in record["members"]] == [0.5, 0.5]
    emb = export_embeddings(out, "test")
    assert emb.user_vectors.shape[1] == emb.item_table.shape[1] == 32  # two 16-d members side by side
    scores, targets = _weighted_scores(record, "test")
    assert emb.history is not None  # the members' terms, combined
    np.testing.assert_allclose(_scores(emb), scores, rtol=1e-5, atol=1e-5)
    # the recorded validation value is what the loaded ensemble scores on validation
    valid = export_embeddings(out, "valid")
    import torch

    assert record["selection"]["value"] == pytest.approx(
        metric_of(torch.from_numpy(_scores(valid)), torch.from_numpy(valid.targets), "ndcg@10"), abs=1e-6)
    np.testing.assert_array_equal(evaluate_arrays(emb.user_vectors, emb.item_table, targets, None, history=emb.history).ranks,
                                  evaluate_arrays(np.eye(scores.shape[0], dtype=np.float32), scores.T.copy().astype(np.float32), targets, None).ranks)


def test_greedy_selection_never_scores_below_its_best_member_on_validation(runs, tmp_path):
    record = build_ensemble([runs["sasrec"], runs["gru4rec"]], tmp_path / "ens", EnsembleOptions(metric="mrr"))
    best_alone = max(m["valid_mrr"] for m in record["members"])
    assert record["selection"]["value"] >= best_alone
    assert sum(m["weight"] for m in record["members"]) == pytest.approx(1.0)
    assert record["selection"]["trace"][0]["value"] == pytest.approx(best_alone)
    loaded = load_ensemble(tmp_path / "ens")
    assert isinstance(loaded.encoder, EnsembleUserEncoder)
    assert loaded.config["model"] == "ensemble"
    assert len(loaded.encoder.members) == sum(m["weight"] > 0 for m in record["members"])  # unpicked members are not loaded


def test_bad_input_is_named(runs, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(EnsembleError, match="must share one dataset"):
        build_ensemble([runs["sasrec"], runs["other"]], out)
    with pytest.raises(EnsembleError, match="given twice"):
        build_ensemble([runs["sasrec"], runs["sasrec"]], out)
    with pytest.raises(EnsembleError, match="unknown selection method"):
        build_ensemble([runs["sasrec"]], out, EnsembleOptions(method="stacking"))
    build_ensemble([runs["sasrec"], runs["gru4rec"]], out, EnsembleOptions(method="equal"))
    before = (out / "ensemble.json").read_text()
    with pytest.raises(EnsembleError, match="exists; pass --force"):
        build_ensemble([runs["sasrec"]], out)
    assert (out / "ensemble.json").read_text() == before  # a finished ensemble is never replaced silently
    with pytest.raises(EnsembleError, match="itself an ensemble"):
        build_ensemble([runs["sasrec"], out], tmp_path / "nested")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ensemble.json").write_text("{not json")
    with pytest.raises(EnsembleError, match=r"broken/ensemble.json: not valid JSON"):
        load_run(broken)
    record = json.loads(before)
    record["members"][0]["run"] = str(tmp_path / "gone")
    (broken / "ensemble.json").write_text(json.dumps(record))
    with pytest.raises(EnsembleError, match="gone is missing"):
        load_run(broken)
    record = json.loads(before)
    record["dataset"]["fingerprint"] = "0" * 64
    (broken / "ensemble.json").write_text(json.dumps(record))
    with pytest.raises(EnsembleError, match="dataset changed"):
        load_run(broken)


def test_cli_builds_evaluates_and_serves_an_ensemble(runs, tmp_path):
    out = tmp_path / "ens"
    r = CliRunner().invoke(app, ["ensemble", str(runs["sasrec"]), str(runs["gru4rec"]), "--out", str(out), "--rounds", "3"])
    assert r.exit_code == 0, r.output
    assert "ensemble valid ndcg@10" in r.output and "gru4rec" in r.output
    r = CliRunner().invoke(app, ["eval", "--run", str(out), "--bootstrap", "0", "--no-baselines"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "results.json").read_text())["metrics"]["ndcg@10"] >= 0.0
    r = CliRunner().invoke(app, ["recommend", "--run", str(out), "--user", "u1", "--k", "3"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["export", "--run", str(out), "--out", str(tmp_path / "exp")])
    assert r.exit_code != 0 and "no single scriptable user encoder" in r.output
    r = CliRunner().invoke(app, ["ensemble", str(runs["sasrec"]), "--out", str(out)])
    assert r.exit_code != 0 and "--force" in r.output


def test_cli_takes_runs_as_run_options_and_quiet_prints_one_line(runs, tmp_path):
    out = tmp_path / "ens"
    r = CliRunner().invoke(app, ["ensemble", "--run", str(runs["sasrec"]), "--run", str(runs["gru4rec"]), "-o", str(out),
                                 "--select", "equal", "--device", "cpu", "--dataset", str(runs["root"] / "data"), "-q"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines() == [f"ensemble valid ndcg@10: {json.loads((out / 'ensemble.json').read_text())['selection']['value']:.4f}; "
                                             f"wrote {out / 'ensemble.json'}"]
    assert [m["name"] for m in json.loads((out / "ensemble.json").read_text())["members"]] == ["sasrec", "gru4rec"]
    r = CliRunner().invoke(app, ["ensemble", "-o", str(tmp_path / "none")])
    assert r.exit_code == 1 and "name the member runs" in r.output


def test_force_replaces_only_the_ensemble_json(runs, tmp_path):
    from recx.options import DEFAULT_SEED

    out = tmp_path / "ens"
    first = build_ensemble([runs["sasrec"], runs["gru4rec"]], out, EnsembleOptions(method="equal"))
    assert first["selection"]["sample_seed"] == DEFAULT_SEED
    (out / "notes.txt").write_text("mine")
    r = CliRunner().invoke(app, ["ensemble", str(runs["sasrec"]), "-o", str(out), "--select", "equal", "--force", "-q"])
    assert r.exit_code == 0, r.output
    assert [m["name"] for m in json.loads((out / "ensemble.json").read_text())["members"]] == ["sasrec"]
    assert (out / "notes.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["ensemble.json", "notes.txt"]
    # a trained run's folder is never an ensemble's, --force or not
    member = runs["sasrec"]
    before = {p.name: p.read_bytes() for p in member.iterdir() if p.is_file()}
    for force in ([], ["--force"]):
        r = CliRunner().invoke(app, ["ensemble", str(runs["gru4rec"]), "-o", str(member), *force])
        assert r.exit_code == 1 and "a trained run's folder" in r.output
    assert {p.name: p.read_bytes() for p in member.iterdir() if p.is_file()} == before


def test_selection_under_history_exclusion_matches_eval_with_exclusion(runs, tmp_path):
    import torch

    out = tmp_path / "ens"
    record = build_ensemble([runs["sasrec"], runs["gru4rec"]], out, EnsembleOptions(method="equal", exclude_history=True))
    valid = export_embeddings(out, "valid")
    expected = evaluate_arrays(valid.user_vectors, valid.item_table, valid.targets, valid.histories, exclude_history=True,
                               history=valid.history).metrics["ndcg@10"]
    assert record["selection"]["exclude_history"] is True
    assert record["selection"]["value"] == pytest.approx(expected, abs=1e-6)
    kept = metric_of(torch.from_numpy(_scores(valid)), torch.from_numpy(valid.targets), "ndcg@10")
    assert kept <= expected  # removing the history never lowers a target's rank


def test_members_load_the_checkpoint_the_weights_were_chosen_with(runs, tmp_path):
    out = tmp_path / "ens"
    build_ensemble([runs["sasrec"], runs["gru4rec"]], out, EnsembleOptions(method="equal", checkpoint="last.pt"))
    loaded = load_run(out)  # `recx eval` asks for best.pt; the ensemble keeps its own
    assert loaded.checkpoint == "last.pt"
    member = load_run(runs["sasrec"], "last.pt").encoder
    np.testing.assert_array_equal(loaded.encoder.members[0].item_table(), member.item_table())
