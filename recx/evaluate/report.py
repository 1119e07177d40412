"""Printing results: rich tables in the seed-paper layout, paired comparisons, metric-vs-K plots.

Seed-paper layout: rows are metrics (HR@K, NDCG@K for each K, then MRR), columns are models,
and a final ``Improv.`` column gives the relative gain of the last model over the best of the
others, as in the UniSRec / IDvs.MoRec tables.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from recx.artifacts import atomic_write
from recx.evaluate.metrics import metrics_from_ranks

Interval = tuple[float, float]
_BASE_ORDER = {"hr": 0, "recall": 1, "ndcg": 2, "index_recall": 3}


def metric_order(names: Sequence[str]) -> list[str]:
    """hr@k, ndcg@k by increasing k, then mrr, then anything else in the given order."""

    def key(n: str) -> tuple[int, int, int, str]:
        if "@" in n:
            base, k = n.split("@", 1)
            return (0, int(k) if k.isdigit() else 0, _BASE_ORDER.get(base, len(_BASE_ORDER)), base)
        return (1 if n == "mrr" else 2, 0, 0, n)

    seen = list(dict.fromkeys(names))
    return sorted(seen, key=key)


def metric_label(name: str) -> str:
    base, _, k = name.partition("@")
    label = {"hr": "HR", "ndcg": "NDCG", "mrr": "MRR", "index_recall": "Index recall"}.get(base, base)
    return f"{label}@{k}" if k else label


def improvement(values: Sequence[float]) -> float:
    """(last - best of the others) / best of the others; NaN when undefined."""
    others = [v for v in values[:-1] if not math.isnan(v)]
    if not others or math.isnan(values[-1]):
        return float("nan")
    best = max(others)
    return (values[-1] - best) / best if best > 0 else float("nan")


def _fmt(v: float, ci: Interval | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{v:.4f}"
    if ci is not None:
        s += f" [{ci[0]:.4f}, {ci[1]:.4f}]"
    return s


def _fmt_pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{100 * v:+.2f}%"


def results_table(
    columns: Sequence[tuple[str, Mapping[str, float]]],
    cis: Mapping[str, Mapping[str, Interval]] | None = None,
    title: str | None = None,
    improv: bool = True,
) -> Table:
    """Rows = metrics, columns = models (in the order given), plus Improv. when >= 2 models.

    Args:
        columns: (model name, {metric: value}).
        cis: optional {model name: {metric: (low, high)}} shown after each value.
    """
    names = metric_order([m for _, mets in columns for m in mets])
    table = Table(title=title, header_style="bold")
    table.add_column("Metric")
    for model, _ in columns:
        table.add_column(model, justify="right")
    show_improv = improv and len(columns) >= 2
    if show_improv:
        table.add_column("Improv.", justify="right")
    for m in names:
        row = [metric_label(m)]
        vals = []
        for model, mets in columns:
            v = mets.get(m, float("nan"))
            vals.append(v)
            row.append(_fmt(v, (cis or {}).get(model, {}).get(m)))
        if show_improv:
            row.append(_fmt_pct(improvement(vals)))
        table.add_row(*row)
    return table


def markdown_table(columns: Sequence[tuple[str, Mapping[str, float]]], cis: Mapping[str, Mapping[str, Interval]] | None = None) -> str:
    """The same layout as ``results_table`` as a GitHub markdown table."""
    names = metric_order([m for _, mets in columns for m in mets])
    head = ["Metric", *[c for c, _ in columns]] + (["Improv."] if len(columns) >= 2 else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in names:
        vals = [mets.get(m, float("nan")) for _, mets in columns]
        cells = [metric_label(m)] + [_fmt(v, (cis or {}).get(c, {}).get(m)) for (c, _), v in zip(columns, vals)]
        if len(columns) >= 2:
            cells.append(_fmt_pct(improvement(vals)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(name_a: str, name_b: str, paired: Mapping[str, Mapping[str, float]], title: str | None = None) -> Table:
    """Paired comparison B vs A: values, Improv., 95% CI of the mean difference, p-values."""
    table = Table(title=title, header_style="bold")
    for col, just in (("Metric", "left"), (name_a, "right"), (name_b, "right"), ("Improv.", "right"),
                      ("Δ 95% CI", "right"), ("p (perm.)", "right"), ("p (Wilcoxon)", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for m in metric_order(list(paired)):
        r = paired[m]
        table.add_row(
            metric_label(m), _fmt(r["mean_a"]), _fmt(r["mean_b"]), _fmt_pct(r["improv"]),
            f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", f"{r['p_permutation']:.4g}",
            "-" if math.isnan(r["p_wilcoxon"]) else f"{r['p_wilcoxon']:.4g}",
        )
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    (console or Console()).print(table)


DEFAULT_PLOT_KS = (1, 5, 10, 20, 50, 100)


def plot_metrics_vs_k(
    path: str | os.PathLike,
    series: Sequence[tuple[str, np.ndarray]],
    ks: Sequence[int] = DEFAULT_PLOT_KS,
    title: str | None = None,
) -> Path:
    """HR@K and NDCG@K against K (log x axis) for each (model name, ranks [U]); PNG written
    through a temp file.  Refuses to overwrite an existing file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    if out.exists():
        from recx.errors import RecxError

        raise RecxError(f"{out}: already exists; choose another --plot file")
    ks = sorted(set(int(k) for k in ks))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, ranks in series:
        m = metrics_from_ranks(ranks, ks)
        axes[0].plot(ks, [m[f"hr@{k}"] for k in ks], marker="o", label=name)
        axes[1].plot(ks, [m[f"ndcg@{k}"] for k in ks], marker="o", label=name)
    for ax, label in zip(axes, ("HR@K", "NDCG@K")):
        ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_xlabel("K")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
    return out
