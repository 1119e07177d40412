"""Uncertainty of mean per-user metrics: bootstrap confidence intervals and paired tests.

All resampling is seeded and vectorized: one [B, U] index matrix (in blocks) is shared by
every metric, so intervals of different metrics come from the same resamples.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

_BLOCK = 1 << 22  # resampled values held at once (B_block * U * M)


def _resampled_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``values`` [M, U] over ``n_boot`` bootstrap resamples of users: [n_boot, M]."""
    m, u = values.shape
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK // max(1, u * m))
    out = np.empty((n_boot, m), dtype=np.float64)
    for lo in range(0, n_boot, rows):
        b = min(rows, n_boot - lo)
        idx = rng.integers(0, u, size=(b, u))
        out[lo : lo + b] = values[:, idx].mean(2).T
    return out


def bootstrap_ci(
    per_user: Mapping[str, np.ndarray], n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI of each metric's mean over users: {name: (low, high)}."""
    names = list(per_user)
    if not names or n_boot < 1:
        return {}
    values = np.stack([np.asarray(per_user[n], dtype=np.float64) for n in names])
    if values.shape[1] == 0:
        return {}
    means = _resampled_means(values, n_boot, seed)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a], axis=0)
    return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}


def paired_test(
    a: Mapping[str, np.ndarray],
    b: Mapping[str, np.ndarray],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Compare two models on the same users, metric by metric, on d = b - a per user.

    Returns, per metric present in both: ``mean_a``, ``mean_b``, ``diff`` (mean of d),
    ``improv`` ((mean_b - mean_a) / mean_a, NaN when mean_a is 0), ``ci_low``/``ci_high``
    (paired percentile bootstrap CI of the mean difference), ``p_permutation`` (two-sided
    sign-flip permutation test of mean d = 0, with the +1 correction), and ``p_wilcoxon``
    (Wilcoxon signed-rank, normal approximation; NaN if all d are 0).
    """
    names = [n for n in a if n in b]
    if not names:
        return {}
    va = np.stack([np.asarray(a[n], dtype=np.float64) for n in names])
    vb = np.stack([np.asarray(b[n], dtype=np.float64) for n in names])
    if va.shape != vb.shape:
        raise ValueError(f"paired test needs the same users in both runs; got {va.shape[1]} and {vb.shape[1]}")
    d = vb - va  # [M, U]
    m, u = d.shape
    boot = _resampled_means(d, n_boot, seed)  # [B, M]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)

    rng = np.random.default_rng(seed + 1)
    obs = np.abs(d.mean(1))
    exceed = np.zeros(m, dtype=np.int64)
    rows = max(1, _BLOCK // max(1, u))
    for start in range(0, n_boot, rows):
        nb = min(rows, n_boot - start)
        signs = rng.integers(0, 2, size=(nb, u)).astype(np.float64) * 2.0 - 1.0  # [nb, U]
        flipped = np.abs(signs @ d.T / u)  # [nb, M]
        exceed += (flipped >= obs - 1e-15).sum(0)
    p_perm = (1.0 + exceed) / (1.0 + n_boot)

    out: dict[str, dict[str, float]] = {}
    for i, n in enumerate(names):
        ma, mb = float(va[i].mean()), float(vb[i].mean())
        out[n] = {
            "mean_a": ma,
            "mean_b": mb,
            "diff": mb - ma,
            "improv": (mb - ma) / ma if ma != 0 else float("nan"),
            "ci_low": float(lo[i]),
            "ci_high": float(hi[i]),
            "p_permutation": float(p_perm[i]),
            "p_wilcoxon": wilcoxon_p(d[i]),
        }
    return out


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences ``d`` [U], normal
    approximation with the tie correction; zero differences are dropped (Wilcoxon's rule).
    Equals ``scipy.stats.wilcoxon(d, method="approx").pvalue``.  NaN if every d is 0."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return float("nan")
    values, inverse, counts = np.unique(np.abs(d), return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = (first + (counts + 1) / 2.0)[inverse]  # average ranks, 1-based
    r_plus = ranks[d > 0].sum()
    r_minus = ranks[d < 0].sum()
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - (counts**3 - counts).sum() / 48.0
    if var <= 0:
        return float("nan")
    z = (min(r_plus, r_minus) - mean) / math.sqrt(var)
    return float(math.erfc(abs(z) / math.sqrt(2.0)))
