"""Bootstrap CIs and paired tests against straightforward loop references."""

import numpy as np
import pytest

from recx.evaluate import stats
from recx.evaluate.stats import bootstrap_ci, paired_test


def loop_bootstrap(values, n_boot, seed, level=0.95):
    """Reference: the same resamples as stats._resampled_means, drawn in one block, one loop."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = np.array([values[row].mean() for row in idx])
    a = (1 - level) / 2
    return tuple(np.quantile(means, [a, 1 - a]))


def test_bootstrap_matches_loop_reference():
    rng = np.random.default_rng(0)
    v = (rng.random(300) < 0.2).astype(float)
    ci = bootstrap_ci({"hr@10": v}, n_boot=400, seed=5)["hr@10"]
    assert ci == pytest.approx(loop_bootstrap(v, 400, 5))
    assert ci[0] < v.mean() < ci[1]


def test_bootstrap_blocks_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(1)
    per_user = {"a": rng.random(50), "b": rng.random(50)}
    whole = bootstrap_ci(per_user, n_boot=64, seed=2)
    monkeypatch.setattr(stats, "_BLOCK", 100)  # one resample per block
    assert bootstrap_ci(per_user, n_boot=64, seed=2) == whole


def test_bootstrap_constant_and_empty():
    assert bootstrap_ci({"m": np.full(10, 0.25)}, n_boot=50) == {"m": (0.25, 0.25)}
    assert bootstrap_ci({"m": np.full(10, 0.25)}, n_boot=0) == {}


def test_paired_identical_runs():
    v = np.random.default_rng(0).random(100)
    r = paired_test({"m": v}, {"m": v.copy()}, n_boot=200)["m"]
    assert r["diff"] == 0 and r["ci_low"] == 0 and r["ci_high"] == 0
    assert r["p_permutation"] == 1.0
    assert np.isnan(r["p_wilcoxon"])  # all differences are zero


def test_paired_clear_improvement():
    rng = np.random.default_rng(0)
    a = rng.random(200) * 0.1
    b = a + 0.05 + rng.random(200) * 0.01
    r = paired_test({"mrr": a}, {"mrr": b}, n_boot=500, seed=1)["mrr"]
    assert r["diff"] == pytest.approx(b.mean() - a.mean())
    assert r["improv"] == pytest.approx((b.mean() - a.mean()) / a.mean())
    assert r["ci_low"] > 0.05 and r["ci_high"] < 0.06
    assert r["p_permutation"] == pytest.approx(1 / 501)  # no sign flip reaches the observed mean
    assert r["p_wilcoxon"] < 1e-10


def test_paired_permutation_matches_loop_reference():
    rng = np.random.default_rng(3)
    a, b = rng.random(40), rng.random(40)
    r = paired_test({"m": a}, {"m": b}, n_boot=300, seed=4)["m"]
    d = b - a
    flips = np.random.default_rng(5).integers(0, 2, size=(300, 40)) * 2.0 - 1.0  # seed + 1
    exceed = sum(abs((s * d).mean()) >= abs(d.mean()) - 1e-15 for s in flips)
    assert r["p_permutation"] == pytest.approx((1 + exceed) / 301)


def test_paired_needs_same_users():
    with pytest.raises(ValueError, match="same users"):
        paired_test({"m": np.zeros(3)}, {"m": np.zeros(4)})


def test_wilcoxon_hand_made_and_against_scipy():
    # d = [1, -2, 3, 0]: the zero is dropped; ranks 1, 2, 3; R+ = 4, R- = 2; n = 3
    # mean 3, var 3.5 -> z = (2 - 3) / sqrt(3.5)
    import math

    assert stats.wilcoxon_p(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx(math.erfc(1 / math.sqrt(3.5) / math.sqrt(2)))
    assert np.isnan(stats.wilcoxon_p(np.zeros(5)))
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    d = rng.integers(-2, 3, size=300).astype(float) * 0.5  # many ties and zeros, like HR differences
    assert stats.wilcoxon_p(d) == pytest.approx(scipy_stats.wilcoxon(d, method="approx").pvalue, rel=1e-9)
    d = rng.standard_normal(80) + 0.2
    assert stats.wilcoxon_p(d) == pytest.approx(scipy_stats.wilcoxon(d, method="approx").pvalue, rel=1e-9)
