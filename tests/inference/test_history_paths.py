"""A model's history term ranks the same on every path: retrieval (matmul, FAISS, approximate),
validation, `recx eval`, `Recommender`, the TorchScript export and ensembles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recx.evaluate import retrieval as R


def _brute_topk(users, table, k, history=None, exclude=None):
    s = users @ table.T
    s[:, 0] = -np.inf
    if history is not None:
        for u in range(len(users)):
            for i, v in zip(history.items[u], history.values[u]):
                if i > 0:
                    s[u, i] += v
    if exclude is not None:
        for u, ex in enumerate(exclude):
            s[u, ex] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=1)[:, :k]
    return order, np.take_along_axis(s, order, 1)


def _random_case(seed=0, users=30, items=60, dim=8, width=6):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((users, dim)).astype(np.float32)
    t = rng.standard_normal((items + 1, dim)).astype(np.float32)
    hist_items = np.zeros((users, width), np.int64)
    for r in range(users):
        n = int(rng.integers(0, width + 1))
        hist_items[r, :n] = rng.choice(np.arange(1, items + 1), n, replace=False)
    values = np.where(hist_items > 0, rng.normal(0, 4, hist_items.shape), 0).astype(np.float32)  # up and down
    return u, t, R.HistoryScores(hist_items, values)


def test_every_retrieval_path_adds_the_history_scores():
    u, t, hist = _random_case()
    want_items, want_scores = _brute_topk(u, t, 10, hist)
    plain_items, _ = _brute_topk(u, t, 10)
    assert (want_items != plain_items).any()  # the term changes the lists: the checks below can fail
    for top in (R.topk_matmul(u, t, 10, history=hist), R.topk_faiss(u, t, 10, history=hist),
                R.topk_approx(u, t, 10, R.build_index(t, "ivf", nlist=4, nprobe=4), history=hist)):
        assert np.array_equal(top.items, want_items)
        np.testing.assert_allclose(top.scores, want_scores, rtol=1e-5, atol=1e-5)
    exclude = [row[row > 0][:2] for row in hist.items]  # exclusions win over the term
    ex_items, _ = _brute_topk(u, t, 10, hist, exclude)
    assert np.array_equal(R.topk_faiss(u, t, 10, exclude, history=hist).items, ex_items)
    assert np.array_equal(R.topk_matmul(u, t, 10, exclude, history=hist).items, ex_items)


def test_ranks_with_history_match_the_brute_force_ranking():
    u, t, hist = _random_case(1)
    targets = np.where(hist.items[:, 0] > 0, hist.items[:, 0], 5)  # some targets are history items
    order, _ = _brute_topk(u, t, t.shape[0] - 1, hist)
    want = np.array([1 + int(np.flatnonzero(order[r] == targets[r])[0]) for r in range(len(u))], dtype=np.float64)
    assert np.array_equal(R.ranks_matmul(u, t, targets, history=hist), want)


def test_combined_history_scores_are_the_weighted_sum():
    _, _, a = _random_case(2, width=5)
    _, _, b = _random_case(3, width=4)
    both = R.HistoryScores.combine([a, b], [0.5, 2.0])
    dense = np.zeros((len(a.items), 61))
    for part, f in ((a, 0.5), (b, 2.0)):
        np.add.at(dense, (np.arange(len(a.items))[:, None], part.items), f * part.values)
    dense[:, 0] = 0
    got = np.zeros_like(dense)
    np.add.at(got, (np.arange(len(a.items))[:, None], both.items), both.values)
    got[:, 0] = 0
    np.testing.assert_allclose(got, dense, rtol=1e-6)
    for row in both.items:
        assert len(set(row[row > 0].tolist())) == (row > 0).sum()  # each item once


@pytest.fixture(scope="module")
def term_run(trained, tmp_path_factory):
    """A trained run whose history term is made large (so a path that left it out would rank
    differently), written back into its best checkpoint."""
    import shutil

    from recx.artifacts import torch_save
    from recx.trainer.checkpoint import load_checkpoint

    run = tmp_path_factory.mktemp("term") / "run"
    shutil.copytree(trained(history_term="item"), run)
    state = load_checkpoint(run / "best.pt")
    g = torch.Generator().manual_seed(0)
    for name in ("history_term.recency", "history_term.count", "history_term.item"):
        state["model"][name] = torch.randn(state["model"][name].shape, generator=g) * 3
    state["model"]["history_term.active"] = torch.tensor(True)  # whatever validation chose, rank with it
    torch_save(state, run / "best.pt")
    return run


def test_every_ranking_path_gives_the_same_top_k(term_run, tiny_dataset, tmp_path):
    from recx.ensemble.run import EnsembleOptions, build_ensemble
    from recx.evalrun import run_detailed
    from recx.inference import Recommender
    from recx.inference.export import export_run
    from recx.trainer.loop import evaluate_split, load_trained

    model, cfg, ds = load_trained(term_run)
    histories, targets = ds.split("test")

    @torch.no_grad()
    def user_vectors(histories):  # one history at a time, as the model reads it
        return np.stack([model(torch.as_tensor(h[-cfg.model.max_len:])[None])[0, -1].float().numpy() for h in histories])

    with torch.no_grad():
        table = model.item_table().float().numpy()
    users = user_vectors(histories)
    hist = model.history_term.scores(histories)
    want, _ = _brute_topk(users, table, 10, hist)
    assert (want != _brute_topk(users, table, 10)[0]).any()

    from_run = Recommender.from_run(term_run).recommend_indices(histories, 10)
    export_run(term_run, tmp_path / "export", onnx=False)
    from_export = Recommender.from_export(tmp_path / "export").recommend_indices(histories, 10)
    build_ensemble([term_run], tmp_path / "ens", EnsembleOptions(method="equal"))
    from_ensemble = Recommender.from_run(tmp_path / "ens").recommend_indices(histories, 10)
    for top in (from_run, from_export, from_ensemble):
        assert np.array_equal(top.items, want)

    # `recx eval` and the validation inside training rank with the term too
    rec, res, _ = run_detailed(term_run, ks=(10,), write=False, device="cpu", n_boot=0)
    want_ranks = R.ranks_matmul(users, table, targets, history=hist)
    assert np.array_equal(res.ranks, want_ranks)
    valid = evaluate_split(model, ds, "valid", cfg)
    v_hist, v_targets = ds.split("valid")
    from recx.evaluate.metrics import metrics_from_ranks

    want_valid = metrics_from_ranks(R.ranks_matmul(user_vectors(v_hist), table, v_targets, history=model.history_term.scores(v_hist)), (10,))
    assert valid == pytest.approx(want_valid, abs=1e-9)
