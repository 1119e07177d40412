"""Table layout, Improv., labels and the metric-vs-K plot."""

import math

import numpy as np
import pytest
from rich.console import Console

from recx.errors import RecxError
from recx.evaluate import report


def test_metric_order_and_labels():
    names = ["mrr", "ndcg@20", "hr@20", "index_recall@10", "ndcg@10", "hr@10"]
    assert report.metric_order(names) == ["hr@10", "ndcg@10", "index_recall@10", "hr@20", "ndcg@20", "mrr"]
    assert [report.metric_label(n) for n in ("hr@10", "ndcg@5", "mrr")] == ["HR@10", "NDCG@5", "MRR"]


def test_improvement_is_last_over_best_other():
    assert report.improvement([0.1, 0.2, 0.25]) == pytest.approx(0.25)
    assert report.improvement([0.2, 0.1]) == pytest.approx(-0.5)
    assert math.isnan(report.improvement([0.3]))
    assert math.isnan(report.improvement([0.0, 0.1]))
    assert report.improvement([float("nan"), 0.1, 0.2]) == pytest.approx(1.0)


def test_markdown_table_exact():
    md = report.markdown_table([("Pop", {"hr@10": 0.1, "mrr": 0.05}), ("SASRec", {"hr@10": 0.12, "mrr": 0.04})],
                               cis={"SASRec": {"hr@10": (0.11, 0.13)}})
    assert md.splitlines() == [
        "| Metric | Pop | SASRec | Improv. |",
        "|---|---|---|---|",
        "| HR@10 | 0.1000 | 0.1200 [0.1100, 0.1300] | +20.00% |",
        "| MRR | 0.0500 | 0.0400 | -20.00% |",
    ]


def test_rich_tables_render():
    console = Console(record=True, width=200)
    report.print_table(report.results_table([("A", {"hr@10": 0.1}), ("B", {"hr@10": 0.15})], title="t"), console)
    paired = {"hr@10": {"mean_a": 0.1, "mean_b": 0.15, "improv": 0.5, "ci_low": 0.01, "ci_high": 0.09, "p_permutation": 0.002, "p_wilcoxon": float("nan")}}
    report.print_table(report.comparison_table("A", "B", paired), console)
    text = console.export_text()
    assert "+50.00%" in text and "[+0.0100, +0.0900]" in text and "0.002" in text


def test_plot_writes_png_and_refuses_overwrite(tmp_path):
    out = tmp_path / "k.png"
    report.plot_metrics_vs_k(out, [("A", np.array([1.0, 4.0, 30.0]))], ks=(1, 5, 10))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RecxError, match="already exists"):
        report.plot_metrics_vs_k(out, [("A", np.array([1.0]))])
