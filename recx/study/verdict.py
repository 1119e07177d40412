"""From each candidate's best trial to a verdict: replicas with more seeds, test metrics with
confidence intervals, and paired tests between candidates, each said in one sentence.

Per user, a candidate's test metric is the mean over its seed replicas; its interval is the
bootstrap over users of that mean, and two candidates are compared on the same users (paired
sign-flip test, recx.evaluate.stats.paired_test), so seed noise and user noise both count.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recx.evaluate.stats import bootstrap_ci, paired_test
from recx.study.candidates import Candidate
from recx.study.plan import StudyPlan
from recx.trainer.checkpoint import LAST, load_run_config
from recx.workspace import run_finished

ALPHA = 0.05  # a difference counts below this p-value
METRICS = ("ndcg@10", "hr@10", "mrr")
HEADLINE = "ndcg@10"


def replicate(plan: StudyPlan, cand: Candidate, best_run: Path) -> list[tuple[int, Path]]:
    """The best trial's run, then one run per further seed with its config (resumed where a
    replica was interrupted, reused where it finished): ``[(seed, run_dir), ...]``."""
    from recx.trainer.loop import fit

    best_cfg = load_run_config(best_run)
    runs = [(best_cfg.run.seed, best_run)]
    for seed in plan.seed_list()[1:]:
        run_dir = plan.runs / cand.key / f"seed-{seed}"
        if not run_finished(run_dir):
            resume = (run_dir / LAST).is_file()
            if run_dir.exists() and not resume:  # killed before its first checkpoint: recx's own partial folder
                shutil.rmtree(run_dir)
            cfg = load_run_config(best_run)
            cfg.run.seed, cfg.run.name = seed, run_dir.name
            if plan.progress:
                print(f"{cand.key}: seed {seed} ({'resumed' if resume else 'new'})", file=sys.stderr, flush=True)
            fit(cfg, run_dir=run_dir, resume=resume, progress=False)
        runs.append((seed, run_dir))
    return runs


def test_per_user(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's per-user test metrics (full catalog, history kept, pessimistic ties), each [U];
    also records results.json in the run."""
    from recx.evalrun.runs import run_detailed

    _, res, _ = run_detailed(run_dir, split="test", ks=(10,), n_boot=0)
    return {m: np.asarray(res.per_user[m], dtype=np.float64) for m in METRICS}


@dataclass
class Scored:
    """One candidate's test results over its seed replicas."""

    cand: Candidate
    label: str
    per_user: dict[str, np.ndarray]  # metric -> [U], mean over seeds
    per_seed: list[dict[str, float]]  # each replica's mean metrics, with its seed

    def summary(self, n_boot: int, seed: int) -> dict[str, Any]:
        means = {m: float(v.mean()) for m, v in self.per_user.items()}
        ci = bootstrap_ci(self.per_user, n_boot, 0.95, seed)
        values = [s[HEADLINE] for s in self.per_seed]
        return {"metrics": means, "ci95": {m: list(ci[m]) for m in ci}, "seeds": self.per_seed,
                "seed_mean": statistics.fmean(values), "seed_sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def score(cand: Candidate, label: str, runs: list[tuple[int, Path]]) -> Scored:
    per_seed, arrays = [], []
    for seed, run_dir in runs:
        values = test_per_user(run_dir)
        arrays.append(values)
        per_seed.append({"seed": seed, "run": str(run_dir), **{m: float(v.mean()) for m, v in values.items()}})
    per_user = {m: np.mean([a[m] for a in arrays], axis=0) for m in METRICS}
    return Scored(cand, label, per_user, per_seed)


def sentence(a: str, b: str, stats: dict[str, float], metric: str = HEADLINE, alpha: float = ALPHA) -> str:
    """One plain sentence for ``a`` against ``b`` (``stats``: paired_test's row of b - a, seen from a)."""
    p, improv = stats["p_permutation"], stats["improv"]
    shown = f"{100 * improv:+.1f}%" if np.isfinite(improv) else f"{stats['diff']:+.4f}"
    name = metric.upper()
    if p < alpha and stats["diff"] > 0:
        return f"{a} beats {b} by {shown} {name} ({stats['mean_b']:.4f} vs {stats['mean_a']:.4f}), p {p:.3g}."
    if p < alpha:
        return f"{a} trails {b} by {shown} {name} ({stats['mean_b']:.4f} vs {stats['mean_a']:.4f}), p {p:.3g}."
    return f"{a} ties {b} ({shown} {name}, {stats['mean_b']:.4f} vs {stats['mean_a']:.4f}), p {p:.3g}."


def pairs_that_matter(ranked: list[Scored]) -> list[tuple[Scored, Scored]]:
    """The best candidate against every other, then each modality tower against the ID table it
    would replace (same model and loss), which is the question a catalog team asks first."""
    best, out = ranked[0], [(ranked[0], other) for other in ranked[1:]]
    by_key = {s.cand: s for s in ranked}
    for s in ranked:
        if s.cand.tower != "id":
            base = by_key.get(Candidate(s.cand.model, "id", s.cand.loss))
            if base is not None and s is not best and base is not best:
                out.append((s, base))
    return out


def compare(ranked: list[Scored], n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Paired tests for :func:`pairs_that_matter`, each with its sentence."""
    rows = []
    for a, b in pairs_that_matter(ranked):
        stats = paired_test(b.per_user, a.per_user, max(n_boot, 1), seed=seed)  # d = a - b per user
        head = stats[HEADLINE]
        rows.append({"a": a.cand.key, "b": b.cand.key, "metric": HEADLINE, "diff": head["diff"], "improv": head["improv"],
                     "ci95": [head["ci_low"], head["ci_high"]], "p": head["p_permutation"], "sentence": sentence(a.label, b.label, head),
                     "all": stats})
    return rows


def headline(ranked: list[Scored], rows: list[dict[str, Any]]) -> str:
    """The verdict in one sentence: the best candidate, and whoever it does not beat."""
    best = ranked[0]
    if len(ranked) == 1:
        return f"{best.label} is the only candidate: test {HEADLINE.upper()} {best.per_user[HEADLINE].mean():.4f}."
    tied = [r for r in rows if r["a"] == best.cand.key and r["p"] >= ALPHA]
    if not tied:
        return f"Use {best.label}: it scores the highest test {HEADLINE.upper()} and beats every other candidate (p < {ALPHA})."
    peers = [next(s for s in ranked if s.cand.key == r["b"]) for r in tied]
    cheapest = min([best, *peers], key=lambda s: cost(s.cand))
    names = ", ".join(s.label for s in peers)
    advice = (f"the cheapest of them, {cheapest.label}, serves as well" if cheapest is not best
              else f"{best.label} is also the cheapest of them")
    return f"{best.label} scores the highest test {HEADLINE.upper()}, but it does not beat {names} (p >= {ALPHA}): {advice}."


def cost(cand: Candidate) -> tuple[int, int]:
    """How much a tower costs to serve, for breaking a tie: encoders to run (an ID table needs
    none, a modality its featurized store), then parts to combine."""
    parts = cand.tower.split("+")
    return sum(p != "id" for p in parts), len(parts)
