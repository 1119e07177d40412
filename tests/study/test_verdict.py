"""Verdict sentences and pairs from known per-user metric arrays."""

import numpy as np
import pytest

from recx.study.candidates import Candidate
from recx.study.verdict import Scored, compare, headline, pairs_that_matter, sentence


def scored(tower: str, ndcg: np.ndarray) -> Scored:
    per_user = {"ndcg@10": ndcg, "hr@10": (ndcg > 0).astype(float), "mrr": ndcg / 2}
    return Scored(Candidate("sasrec", tower, "debiased_ce"), tower, per_user, [{"seed": 42, "ndcg@10": float(ndcg.mean())}])


def test_sentences_say_beats_trails_and_ties():
    stats = {"p_permutation": 0.001, "improv": 0.072, "diff": 0.005, "mean_a": 0.0700, "mean_b": 0.0750}
    assert sentence("id+text", "id", stats) == "id+text beats id by +7.2% NDCG@10 (0.0750 vs 0.0700), p 0.001."
    assert sentence("text", "id", {**stats, "improv": -0.05, "diff": -0.0035, "mean_b": 0.0665}) == \
        "text trails id by -5.0% NDCG@10 (0.0665 vs 0.0700), p 0.001."
    assert sentence("text", "id", {**stats, "p_permutation": 0.52}) == "text ties id (+7.2% NDCG@10, 0.0750 vs 0.0700), p 0.52."


def test_compare_from_arrays():
    rng = np.random.default_rng(0)
    base = 0.1 + 0.8 * rng.random(2000)
    better = base + 0.05 * (rng.random(2000) < 0.5)  # clearly higher on the same users
    same = base + 0.01 * rng.standard_normal(2000)  # noise around id, no shift
    ranked = sorted([scored("id", base), scored("id+text", better), scored("text", same)], key=lambda s: -s.per_user["ndcg@10"].mean())
    assert [s.label for s in ranked] == ["id+text", "text", "id"]
    pairs = [(a.label, b.label) for a, b in pairs_that_matter(ranked)]
    assert pairs == [("id+text", "text"), ("id+text", "id"), ("text", "id")]
    rows = compare(ranked, n_boot=500, seed=0)
    by_pair = {(r["a"], r["b"]): r for r in rows}
    win = by_pair[("sasrec-id+text-debiased_ce", "sasrec-id-debiased_ce")]
    assert win["p"] < 0.01 and win["diff"] == pytest.approx(better.mean() - base.mean()) and win["sentence"].startswith("id+text beats id by +")
    tie = by_pair[("sasrec-text-debiased_ce", "sasrec-id-debiased_ce")]
    assert tie["p"] > 0.05 and tie["sentence"].startswith("text ties id (")
    assert headline(ranked, rows).startswith("Use id+text: it scores the highest test NDCG@10 and beats every other candidate")
    pair = sorted([scored("id", base), scored("text", same)], key=lambda s: -s.per_user["ndcg@10"].mean())
    assert [s.label for s in pair] == ["text", "id"]
    assert headline(pair, compare(pair, n_boot=200, seed=0)) == (
        "text scores the highest test NDCG@10, but it does not beat id (p >= 0.05): the cheapest of them, id, serves as well.")


def test_seed_summary():
    s = scored("id", np.array([0.0, 1.0, 0.5, 0.5]))
    s.per_seed = [{"seed": 42, "ndcg@10": 0.5}, {"seed": 1, "ndcg@10": 0.4}, {"seed": 2, "ndcg@10": 0.6}]
    summary = s.summary(n_boot=100, seed=0)
    assert summary["seed_mean"] == pytest.approx(0.5) and summary["seed_sd"] == pytest.approx(0.1)
    assert summary["metrics"]["ndcg@10"] == pytest.approx(0.5) and summary["ci95"]["ndcg@10"][0] <= 0.5 <= summary["ci95"]["ndcg@10"][1]
