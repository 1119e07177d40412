"""recx.evaluate.metrics against a brute-force numpy reference, with ties and exclusions."""

import math

import numpy as np
import pytest
import torch

from recx.evaluate.metrics import metrics_from_ranks, per_user_metrics, target_ranks


def brute_rank(scores: np.ndarray, target: int, excluded: set[int], ties: str) -> float:
    """Rank of ``target`` among items 1..N not in ``excluded`` by counting, item by item."""
    greater = equal = 0
    for j in range(1, len(scores)):
        if j == target or j in excluded:
            continue
        if scores[j] > scores[target]:
            greater += 1
        elif scores[j] == scores[target]:
            equal += 1
    return 1.0 + greater + (equal if ties == "pessimistic" else equal / 2.0)


def brute_metrics(ranks: list[float], ks) -> dict[str, float]:
    out = {}
    for k in ks:
        out[f"hr@{k}"] = sum(1.0 for r in ranks if r <= k) / len(ranks)
        out[f"ndcg@{k}"] = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k) / len(ranks)
    out["mrr"] = sum(1.0 / r for r in ranks) / len(ranks)
    return out


@pytest.mark.parametrize("ties", ["pessimistic", "expected"])
@pytest.mark.parametrize("with_exclusion", [False, True])
def test_ranks_and_metrics_match_brute_force_with_ties(ties, with_exclusion):
    rng = np.random.default_rng(7)
    users, n = 60, 25
    scores = rng.integers(0, 4, size=(users, n + 1)).astype(np.float32)  # 4 levels: many ties
    targets = rng.integers(1, n + 1, size=users)
    excluded_sets = [set(rng.choice(np.arange(1, n + 1), size=rng.integers(0, 10), replace=False).tolist()) if with_exclusion else set() for _ in range(users)]
    mask = torch.zeros(users, n + 1, dtype=torch.bool)
    for u, ex in enumerate(excluded_sets):
        mask[u, list(ex)] = True
    got = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), mask if with_exclusion else None, ties).numpy()
    ref = [brute_rank(scores[u], int(targets[u]), excluded_sets[u] - {int(targets[u])}, ties) for u in range(users)]
    np.testing.assert_array_equal(got, np.array(ref))
    m = metrics_from_ranks(got, ks=(1, 5, 10))
    for name, value in brute_metrics(ref, (1, 5, 10)).items():
        assert m[name] == pytest.approx(value, abs=1e-12), name


def test_hand_made_ranks():
    # user 0: target 2 scores 0.5; items 1 (0.9) above, 3 (0.5) tied, 4 (0.1) below
    scores = torch.tensor([[9.0, 0.9, 0.5, 0.5, 0.1]])
    t = torch.tensor([2])
    assert target_ranks(scores, t, ties="pessimistic").tolist() == [3.0]
    assert target_ranks(scores, t, ties="expected").tolist() == [2.5]
    excl = torch.tensor([[False, True, False, False, False]])
    assert target_ranks(scores, t, excl, ties="pessimistic").tolist() == [2.0]
    # excluding the target itself has no effect
    assert target_ranks(scores, t, torch.tensor([[False, False, True, False, False]])).tolist() == [3.0]


def test_metrics_exact_values():
    m = metrics_from_ranks(np.array([1.0, 3.0, 20.0]), ks=(10,))
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1.0 / 2.0) / 3)  # 1/log2(2)=1, 1/log2(4)=0.5
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 20) / 3)
    pu = per_user_metrics(np.array([1.0, 3.0, 20.0]), ks=(10,))
    np.testing.assert_allclose(pu["ndcg@10"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(pu["mrr"], [1.0, 1 / 3, 1 / 20])


def test_bad_tie_rule_and_shapes():
    with pytest.raises(ValueError, match="tie rule"):
        target_ranks(torch.zeros(1, 3), torch.tensor([1]), ties="optimistic")
    with pytest.raises(ValueError, match="must be"):
        target_ranks(torch.zeros(3), torch.tensor([1]))


@pytest.mark.parametrize("ties", ["pessimistic", "expected"])
def test_indexed_exclusions_equal_dense_mask(ties):
    from recx.evaluate.metrics import target_ranks_indexed

    rng = np.random.default_rng(11)
    users, n = 50, 30
    scores = torch.from_numpy(rng.integers(0, 3, size=(users, n + 1)).astype(np.float32))
    scores[:, 0] = 2.0  # the padding column ties with / beats targets: must be ignored
    targets = torch.from_numpy(rng.integers(1, n + 1, size=users))
    lists = [np.unique(rng.integers(1, n + 1, size=rng.integers(0, 12))) for _ in range(users)]
    lists[0] = np.array([int(targets[0])])  # the target in its own exclusion list is kept
    width = max(len(x) for x in lists)
    index = torch.zeros(users, width, dtype=torch.int64)
    mask = torch.zeros(users, n + 1, dtype=torch.bool)
    for u, x in enumerate(lists):
        index[u, : len(x)] = torch.from_numpy(x)
        mask[u, torch.from_numpy(x)] = True
    dense = target_ranks(scores, targets, mask, ties)
    np.testing.assert_array_equal(target_ranks_indexed(scores, targets, index, ties).numpy(), dense.numpy())
    # the transposed view of an [N+1, B] buffer, as ranks_matmul passes it
    transposed = scores.T.contiguous().T
    assert not transposed.is_contiguous()
    np.testing.assert_array_equal(target_ranks_indexed(transposed, targets, index, ties).numpy(), dense.numpy())
    np.testing.assert_array_equal(target_ranks_indexed(scores, targets, None, ties).numpy(), target_ranks(scores, targets, None, ties).numpy())
    ref = [brute_rank(scores[u].numpy(), int(targets[u]), set(lists[u].tolist()) - {int(targets[u])}, ties) for u in range(users)]
    np.testing.assert_array_equal(dense.numpy(), ref)
