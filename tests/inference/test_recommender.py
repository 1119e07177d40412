"""Recommender over a trained run: the evaluator's ranking, history exclusion, unknown ids."""

import numpy as np
import pytest

from recx.evaluate.protocol import evaluate_arrays
from recx.evalrun.runs import load_embeddings
from recx.inference import Recommender
from recx.inference.recommender import RecommendError


@pytest.fixture(scope="module")
def rec(trained):
    return Recommender.from_run(trained())


@pytest.mark.parametrize("exclude_history", [False, True])
def test_topk_equals_the_evaluators_ranking(trained, rec, exclude_history):
    emb = load_embeddings(trained(), "test")  # what `recx eval` loads
    histories, targets, history = emb.histories, emb.targets, emb.history  # history: the run's learned term for each user's own items
    if exclude_history:  # the evaluator never excludes the target itself: compare users whose target is new
        keep = [u for u, (h, t) in enumerate(zip(histories, targets)) if t not in set(h.tolist())]
        histories, targets, history = [histories[u] for u in keep], targets[keep], history.take(np.array(keep))
        users = emb.user_vectors[keep]
    else:
        users = emb.user_vectors
    res = evaluate_arrays(users, emb.item_table, targets, histories, ks=(10,), exclude_history=exclude_history, with_topk=True, history=history)
    top = rec.recommend_indices(histories, 10, exclude_history=exclude_history)
    np.testing.assert_array_equal(top.items, res.topk.items)
    np.testing.assert_allclose(top.scores, res.topk.scores, rtol=1e-6, atol=1e-7)
    pos = np.argwhere(top.items == targets[:, None])  # a target in the list sits at its exact rank
    assert len(pos) and np.array_equal(res.ranks[pos[:, 0]], pos[:, 1] + 1.0)


def test_ids_in_ids_out(rec, tiny_dataset):
    hist = [tiny_dataset.item_ids[i] for i in tiny_dataset.sequence(3)]
    out = rec.recommend([hist], k=5)
    direct = rec.recommend_indices([tiny_dataset.sequence(3)], 5)
    assert out.queries == ["history 1"] and out.item_ids[0] == [tiny_dataset.item_ids[i] for i in direct.items[0]]
    assert out.titles[0][0] == tiny_dataset.texts[direct.items[0, 0]]
    assert [r["rank"] for r in out.rows()] == [1, 2, 3, 4, 5]
    users = rec.recommend_users(["u3"], k=5)  # a known user: the whole sequence is the history
    np.testing.assert_array_equal(users.items, direct.items)


def test_history_exclusion_removes_exactly_the_history(rec, tiny_dataset):
    n = tiny_dataset.num_items
    hist = tiny_dataset.sequence(5)
    full = rec.recommend_indices([hist], n).items[0]
    excl = rec.recommend_indices([hist], n, exclude_history=True).items[0]
    kept = excl[excl > 0]
    assert set(kept.tolist()) == set(range(1, n + 1)) - set(hist.tolist())
    assert (excl[len(kept):] == 0).all()  # the catalog ran out: unfilled slots
    np.testing.assert_array_equal(kept, [i for i in full if i not in set(hist.tolist())])  # same order otherwise


def test_unknown_ids_are_reported_and_skipped(rec, tiny_dataset):
    out = rec.recommend([["i1", "nope", "i5"], ["gone"]], k=3)
    assert out.queries == ["history 1"] and out.skipped == {"history 1": ["nope"], "history 2": ["gone"]}
    assert list(out.dropped) == ["history 2"]
    np.testing.assert_array_equal(out.items[0], rec.recommend([["i1", "i5"]], k=3).items[0])
    msgs = out.messages()
    assert any("'nope'" in m for m in msgs) and any("history 2" in m and "nothing to recommend" in m for m in msgs)
    users = rec.recommend_users(["u1", "stranger"], k=3)
    assert users.queries == ["u1"] and "user stranger" in users.dropped
    with pytest.raises(RecommendError, match="list of lists"):
        rec.recommend(["i1", "i2"], k=3)


def test_similar_items_and_encode_items(rec, tiny_dataset):
    table = rec.item_table
    out = rec.similar_items(["i7", "missing"], k=4)
    q = tiny_dataset.index_of("i7")
    scores = table[1:] @ table[q]
    scores[q - 1] = -np.inf  # never the item itself
    want = np.lexsort((np.arange(1, len(scores) + 1), -scores))[:4] + 1
    np.testing.assert_array_equal(out.items[0], want)
    assert out.queries == ["i7"] and "missing" in out.dropped
    np.testing.assert_array_equal(rec.encode_items(["i7", "i0"]), table[[q, tiny_dataset.index_of("i0")]])
    assert rec.encode_items().shape == (tiny_dataset.num_items, table.shape[1])
    with pytest.raises(RecommendError, match="unknown item id"):
        rec.encode_items(["missing"])


def test_approximate_index_from_run(trained, rec, tiny_dataset):
    approx = Recommender.from_run(trained(), index="hnsw")
    histories, _ = tiny_dataset.split("test")
    a = approx.recommend_indices(histories, 10).items
    e = rec.recommend_indices(histories, 10).items
    assert a.shape == e.shape and (a > 0).all()
    assert np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, e)]) > 0.9  # 40 items: HNSW is near exact
