"""evaluate_arrays, the popularity and random baselines, on hand-made data."""

import math

import numpy as np
import pytest

from recx.data.dataset import Item, write_dataset
from recx.evaluate.protocol import EvalError, evaluate_arrays, popularity_result, random_result, recent_popularity_result

# 1-D embeddings: item j scores user_vector * table[j]; items 1..5 score 5,4,3,2,1 for a user of 1.
TABLE = np.array([[0.0], [5.0], [4.0], [3.0], [2.0], [1.0]], dtype=np.float32)


def test_evaluate_arrays_hand_made():
    users = np.array([[1.0], [1.0], [-1.0]], dtype=np.float32)
    targets = np.array([3, 1, 1])  # ranks 3, 1, 5
    histories = [np.array([1, 2]), np.array([4]), np.array([5, 1])]
    res = evaluate_arrays(users, TABLE, targets, histories, ks=(1, 3))
    assert res.ranks.tolist() == [3.0, 1.0, 5.0]
    assert res.metrics["hr@1"] == pytest.approx(1 / 3)
    assert res.metrics["hr@3"] == pytest.approx(2 / 3)
    assert res.metrics["ndcg@3"] == pytest.approx((0.5 + 1.0) / 3)
    assert res.metrics["mrr"] == pytest.approx((1 / 3 + 1 + 1 / 5) / 3)
    # excluding history: user 0 loses items 1,2 above it -> rank 1; user 2's history holds its
    # target (a repeat), which stays ranked, and item 5 (above it for a user of -1) goes -> rank 4
    ex = evaluate_arrays(users, TABLE, targets, histories, ks=(1, 3), exclude_history=True)
    assert ex.ranks.tolist() == [1.0, 1.0, 4.0]
    assert ex.info["exclude_history"] is True and ex.info["ks"] == [1, 3]


def test_evaluate_arrays_with_topk_and_ties():
    table = np.array([[0.0], [1.0], [1.0], [1.0], [0.0]], dtype=np.float32)
    users = np.ones((1, 1), dtype=np.float32)
    res = evaluate_arrays(users, table, np.array([2]), None, ks=(2,), ties="expected", with_topk=True)
    assert res.ranks.tolist() == [2.0]  # two tied others: 1 + 2/2
    assert res.topk.items.tolist() == [[1, 2]]  # ties broken by the smaller index
    pess = evaluate_arrays(users, table, np.array([2]), None, ks=(2,))
    assert pess.ranks.tolist() == [3.0] and pess.metrics["hr@2"] == 0.0


def test_approximate_index_reports_recall_against_exact():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((401, 8)).astype(np.float32)
    users = rng.standard_normal((40, 8)).astype(np.float32)
    targets = rng.integers(1, 401, 40)
    res = evaluate_arrays(users, table, targets, None, ks=(5, 10), index="ivf", index_params={"nlist": 8, "nprobe": 8}, device="cpu")
    assert res.index_recall == {"index_recall@5": 1.0, "index_recall@10": 1.0}  # all lists probed: exact
    exact = evaluate_arrays(users, table, targets, None, ks=(5, 10))
    for k in (5, 10):  # no float ties here, so the exact top-K lists agree with the ranks
        assert res.approx_metrics[f"hr@{k}"] == pytest.approx(exact.metrics[f"hr@{k}"])
        assert res.approx_metrics[f"ndcg@{k}"] == pytest.approx(exact.metrics[f"ndcg@{k}"])


def test_errors():
    with pytest.raises(EvalError, match="histories"):
        evaluate_arrays(np.ones((1, 1)), TABLE, np.array([1]), None, exclude_history=True)
    with pytest.raises(EvalError, match="positive"):
        evaluate_arrays(np.ones((1, 1)), TABLE, np.array([1]), None, ks=(0,))
    with pytest.raises(EvalError, match="tie rule"):
        evaluate_arrays(np.ones((1, 1)), TABLE, np.array([1]), None, ties="best")  # type: ignore[arg-type]


@pytest.fixture
def tiny_dataset(tmp_path):
    # train parts (seq[:-2]): [1,1,2], [2,3], [1] -> popularity: 1:3, 2:2, 3:1, 4:0
    seqs = [[1, 1, 2, 3, 4], [2, 3, 4, 1], [1, 2, 3]]
    return write_dataset(tmp_path / "ds", [Item(id=f"i{i}") for i in range(1, 5)], ["a", "b", "c"], seqs, {"source": "test"})


def test_popularity_baseline(tiny_dataset):
    assert tiny_dataset.item_popularity().tolist() == [0, 3, 2, 1, 0]
    res = popularity_result(tiny_dataset, "test", ks=(1, 2))
    # test targets 4, 1, 3 -> ranks 4, 1, 3
    assert res.ranks.tolist() == [4.0, 1.0, 3.0]
    valid = popularity_result(tiny_dataset, "valid", ks=(1,))
    assert valid.ranks.tolist() == [3.0, 4.0, 2.0]  # valid targets 3, 4, 2
    ex = popularity_result(tiny_dataset, "test", ks=(1,), exclude_history=True)
    # every user's more popular items are in its history: a {1,2,3}, b {2,3,4}, c {1,2}
    assert ex.ranks.tolist() == [1.0, 1.0, 1.0]
    assert ex.metrics["hr@1"] == 1.0


def test_recent_popularity_baseline(tiny_dataset):
    # test histories (seq[:-1]): [1,1,2,3], [2,3,4], [1,2] -> last items 3, 4, 2: one count each
    res = recent_popularity_result(tiny_dataset, "test", ks=(1,))
    # test targets 4, 1, 3; items 2, 3, 4 tie at 1 and item 1 has 0: pessimistic ranks 3, 4, 3
    assert res.ranks.tolist() == [3.0, 4.0, 3.0]
    # the last two history items: counts 1:1, 2:2, 3:2, 4:1 -> target 4 ties with 1 below 2 and 3
    two = recent_popularity_result(tiny_dataset, "test", ks=(1,), last=2)
    assert two.ranks.tolist() == [4.0, 4.0, 2.0]
    # valid histories (seq[:-2]): last items 2, 3, 1; targets 3, 4, 2
    assert recent_popularity_result(tiny_dataset, "valid", ks=(1,)).ranks.tolist() == [3.0, 4.0, 3.0]


def test_random_baseline_equals_enumeration():
    n = 7
    targets = np.array([1, 2])
    histories = [np.array([3, 4, 1]), np.array([])]
    res = random_result(n, targets, histories, ks=(1, 3), exclude_history=True)
    for u, m in enumerate([n - 2, n]):  # user 0 excludes 3 and 4 (1 is its target)
        ranks = np.arange(1, m + 1)
        assert res.per_user["hr@3"][u] == pytest.approx(np.mean(ranks <= 3))
        assert res.per_user["ndcg@3"][u] == pytest.approx(np.mean(np.where(ranks <= 3, 1 / np.log2(ranks + 1), 0)))
        assert res.per_user["mrr"][u] == pytest.approx(np.mean(1 / ranks))
    assert res.metrics["hr@1"] == pytest.approx((1 / 5 + 1 / 7) / 2)
    assert math.isclose(random_result(n, targets, None, ks=(10,)).metrics["hr@10"], 1.0)


@pytest.mark.parametrize("ties", ["pessimistic", "expected"])
def test_evaluate_arrays_matches_brute_force_with_ties_and_history(ties):
    rng = np.random.default_rng(5)
    n, users = 40, 70
    table = rng.integers(-1, 2, size=(n + 1, 3)).astype(np.float32)  # few distinct scores: many ties
    uv = rng.integers(-1, 2, size=(users, 3)).astype(np.float32)
    targets = rng.integers(1, n + 1, users)
    histories = [rng.integers(1, n + 1, size=rng.integers(1, 15)) for _ in range(users)]
    res = evaluate_arrays(uv, table, targets, histories, ks=(1, 5, 20), exclude_history=True, ties=ties)
    scores = uv @ table.T
    ref_ranks = []
    for u in range(users):
        t = int(targets[u])
        others = [j for j in range(1, n + 1) if j != t and j not in set(histories[u].tolist())]
        greater = sum(scores[u, j] > scores[u, t] for j in others)
        equal = sum(scores[u, j] == scores[u, t] for j in others)
        ref_ranks.append(1 + greater + (equal if ties == "pessimistic" else equal / 2))
    np.testing.assert_array_equal(res.ranks, ref_ranks)
    r = np.array(ref_ranks, dtype=float)
    for k in (1, 5, 20):
        assert res.metrics[f"hr@{k}"] == pytest.approx(np.mean(r <= k))
        assert res.metrics[f"ndcg@{k}"] == pytest.approx(np.mean(np.where(r <= k, 1 / np.log2(r + 1), 0)))
    assert res.metrics["mrr"] == pytest.approx(np.mean(1 / r))
