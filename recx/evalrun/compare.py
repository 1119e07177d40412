"""Evaluate several models on the same users and print one table (baselines first), with
bootstrap intervals and, on request, a paired comparison, per-user CSV and metric-vs-K plot.

Works on already-exported embeddings, so it serves `recx eval`, `recx quickstart` and tests;
the metrics, records and tables themselves come from the pure ``recx.evaluate`` library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.console import Console

from recx.evaluate import report
from recx.evaluate.protocol import EvalError, EvalResult, evaluate_arrays, popularity_result, random_result, recent_popularity_result
from recx.evaluate.results import RESULTS_FILE, result_record, write_per_user_csv, write_results
from recx.evaluate.stats import bootstrap_ci, paired_test
from recx.options import DEFAULT_SEED


@dataclass
class EvalOptions:
    """Everything `recx eval` passes to the protocol (defaults = the CLI defaults)."""

    split: str = "test"
    ks: tuple[int, ...] = (10,)
    exclude_history: bool = False
    ties: str = "pessimistic"
    index: str = "flat"
    index_params: dict[str, int] = field(default_factory=dict)
    device: str = "auto"
    n_boot: int = 1000
    seed: int = DEFAULT_SEED
    baselines: bool = True


@dataclass
class ModelInput:
    """One model to evaluate: its name, its run folder (None: results.json is not written) and
    its exported embeddings (anything with user_vectors, item_table, targets, histories,
    dataset, config: e.g. ``recx.inference.RunEmbeddings``)."""

    name: str
    emb: Any  # RunEmbeddings-like; its ``history`` (the model's history term), where present, is added
    run_dir: Path | None = None


def evaluate_models(
    models: Sequence[ModelInput],
    opts: EvalOptions,
    console: Console | None = None,
    compare: bool = False,
    per_user: Path | None = None,
    plot: Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate every model, print one table (seed-paper layout, baselines first) and, with
    ``compare``, the paired test of the second model against the first.  ``quiet``: the tables
    only, no "wrote FILE" lines.

    Returns ``{"records": {name: results.json record}, "results": {name: EvalResult},
    "paired": {...} | None}``.
    """
    console = console or Console()
    if not models:
        raise EvalError("no model to evaluate")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise EvalError(f"two runs share a name ({', '.join(names)}); pass distinct run folders")
    targets = np.asarray(models[0].emb.targets, dtype=np.int64)
    for m in models[1:]:
        if not np.array_equal(np.asarray(m.emb.targets), targets):
            raise EvalError(f"{m.name} and {models[0].name} were not evaluated on the same users and targets (different datasets or splits)")
    dataset = getattr(models[0].emb, "dataset", None)

    results: dict[str, EvalResult] = {}
    records: dict[str, dict[str, Any]] = {}
    cis: dict[str, dict[str, tuple[float, float]]] = {}
    if opts.baselines:
        n_items = int(np.asarray(models[0].emb.item_table).shape[0] - 1)
        results["Random"] = random_result(n_items, targets, models[0].emb.histories, opts.ks, opts.exclude_history)
        if dataset is not None:
            results["Pop"] = popularity_result(dataset, opts.split, opts.ks, opts.exclude_history, opts.ties)  # type: ignore[arg-type]
            results["Pop (recent)"] = recent_popularity_result(dataset, opts.split, opts.ks, opts.exclude_history, opts.ties)  # type: ignore[arg-type]
    for m in models:
        res = evaluate_arrays(
            m.emb.user_vectors, m.emb.item_table, targets, m.emb.histories, opts.ks, opts.exclude_history,
            opts.ties, index=opts.index, index_params=opts.index_params, device=opts.device,  # type: ignore[arg-type]
            history=getattr(m.emb, "history", None),
        )
        results[m.name] = res
        rec = result_record(res, m.name, opts.split, dataset, getattr(m.emb, "config", None), m.run_dir, opts.n_boot, opts.seed)
        records[m.name] = rec
        if m.run_dir is not None:
            replaced = write_results(m.run_dir, rec)
            note = " (replaced the earlier evaluation with the same settings)" if replaced else ""
            if not quiet:
                console.print(f"wrote {Path(m.run_dir) / RESULTS_FILE}{note}")
    for name, res in results.items():
        if opts.n_boot and name != "Random":  # the random row is an expectation, not a sample
            cis[name] = records[name]["ci95"] if name in records else bootstrap_ci(res.per_user, opts.n_boot, 0.95, opts.seed)

    what = f"{opts.split} split, {'history excluded' if opts.exclude_history else 'history kept'}, ties {opts.ties}"
    if opts.index != "flat":
        what += f", metrics exact; index {opts.index} {results[models[-1].name].info.get('index_params')}"
    title = f"{dataset.name if dataset is not None else 'full catalog'}: {len(targets):,} users, {what}"
    if opts.n_boot:
        title += f"; [95% bootstrap CI, {opts.n_boot} resamples]"
    report.print_table(report.results_table([(n, r.metrics) for n, r in results.items()], cis, title=title), console)
    if opts.index != "flat":
        rows = [(m.name, {**(results[m.name].approx_metrics or {}), **(results[m.name].index_recall or {})}) for m in models]
        report.print_table(report.results_table(rows, title=f"as served by the {opts.index} index (top-K lists)", improv=False), console)

    paired = None
    if compare:
        if len(models) != 2:
            raise EvalError(f"--compare needs exactly two runs; got {len(models)}")
        a, b = models
        paired = paired_test(results[a.name].per_user, results[b.name].per_user, max(opts.n_boot, 1), seed=opts.seed)
        report.print_table(report.comparison_table(a.name, b.name, paired, title=f"{b.name} vs {a.name}: paired over {len(targets):,} users"), console)
    if per_user is not None:
        user_ids = getattr(dataset, "user_ids", None) if dataset is not None and len(getattr(dataset, "user_ids", [])) == len(targets) else None
        write_per_user_csv(per_user, [(n, r) for n, r in results.items()], targets, user_ids)
        if not quiet:
            console.print(f"wrote {per_user}")
    if plot is not None:
        report.plot_metrics_vs_k(plot, [(n, r.ranks) for n, r in results.items() if n != "Random"], sorted(set(report.DEFAULT_PLOT_KS) | set(opts.ks)), title=title.split(";")[0])
        if not quiet:
            console.print(f"wrote {plot}")
    return {"records": records, "results": results, "paired": paired}
