"""Printing results: rich tables in the seed-paper layout, paired comparisons, metric-vs-K plots.

Seed-paper layout: rows are metrics (HR@K, NDCG@K for each K, then MRR), columns are models,
and a final ``Improv.`` column gives the relative gain of the last model over the best of the
others, as in the UniSRec / IDvs.MoRec tables.
"""

from __future__ import annotations

import math
import os
import re
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


_RUN_STAMP = re.compile(r"^\d{8}-\d{6}-")  # default run names: time-model-tower-loss


def short_names(names: Sequence[str]) -> list[str]:
    """Column labels for run names: default names lose their ``YYYYMMDD-HHMMSS-`` stamp where
    the rest still tells them apart (the table's legend keeps the full names)."""
    short = [_RUN_STAMP.sub("", n) or n for n in names]
    return short if len(set(short)) == len(short) else list(names)


def _unbroken_width(cells: Sequence[str]) -> int:
    """The widest space-free word of the cells: a column this wide wraps at spaces and never cuts a number."""
    return max((len(word) for cell in cells for word in cell.split()), default=1)


def _break_label(label: str, width: int) -> str:
    """``label`` with line breaks after ``-`` or a space where a line would pass ``width`` (a run
    name then wraps between its parts instead of mid-word)."""
    parts = re.findall(r"[^-\s]*[-\s]?", label)
    lines = [""]
    for part in filter(None, parts):
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)


def _legend(full: Sequence[str], shown: Sequence[str]) -> str | None:
    pairs = [(s, f) for s, f in zip(shown, full) if s != f]
    return "runs: " + "; ".join(f"{s} = {f}" for s, f in pairs) if pairs else None


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
    show_improv = improv and len(columns) >= 2
    rows = []
    for m in names:
        row = [metric_label(m)]
        vals = []
        for model, mets in columns:
            v = mets.get(m, float("nan"))
            vals.append(v)
            row.append(_fmt(v, (cis or {}).get(model, {}).get(m)))
        if show_improv:
            row.append(_fmt_pct(improvement(vals)))
        rows.append(row)
    full = [model for model, _ in columns]
    shown = short_names(full)
    headers = ["Metric", *shown] + (["Improv."] if show_improv else [])
    return _table(headers, rows, title, caption=_legend(full, shown))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None, caption: str | None = None) -> Table:
    """A rich table whose cells wrap at spaces but are never cut: each column is at least as wide as
    its widest word, so a narrow terminal wraps headers and CIs instead of eliding names and numbers."""
    table = Table(title=title, caption=caption, header_style="bold", caption_justify="left")
    for i, header in enumerate(headers):
        width = max(_unbroken_width([r[i] for r in rows]), *(len(part) for part in re.split(r"(?<=-)|\s", header)))
        table.add_column(_break_label(header, width), justify="left" if i == 0 else "right", overflow="fold", min_width=width)
    for row in rows:
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
    """Paired comparison B vs A: both means, the 95% CI of the mean difference, p-values.

    The runs are columns A and B, named in full under the title, so an 80-column terminal shows
    every name and number whole (the relative gain is the results table's Improv. column)."""
    rows = []
    for m in metric_order(list(paired)):
        r = paired[m]
        rows.append([
            metric_label(m), _fmt(r["mean_a"]), _fmt(r["mean_b"]),
            f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", f"{r['p_permutation']:.4g}",
            "-" if math.isnan(r["p_wilcoxon"]) else f"{r['p_wilcoxon']:.4g}",
        ])
    names = f"A = {name_a}\nB = {name_b}"
    return _table(["Metric", "A", "B", "Δ 95% CI", "p (perm.)", "p (Wilcoxon)"], rows, f"{title}\n{names}" if title else names)


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
