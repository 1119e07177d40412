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


def test_tables_at_80_columns_cut_no_run_name_and_no_number():
    a, b = "20261206-030912-sasrec-id-debiased_ce", "20261206-031544-sasrec-text-debiased_ce"
    cis = {a: {"ndcg@10": (0.0512, 0.0634)}, b: {"ndcg@10": (0.0551, 0.0702)}}
    console = Console(record=True, width=80)
    report.print_table(report.results_table(
        [("Random", {"ndcg@10": 0.0011}), ("Pop", {"ndcg@10": 0.0102}), ("Pop (recent)", {"ndcg@10": 0.0123}),
         (a, {"ndcg@10": 0.0584}), (b, {"ndcg@10": 0.0630})], cis, title="synth: 8,442 users, test split"), console)
    paired = {"ndcg@10": {"mean_a": 0.0584, "mean_b": 0.0630, "improv": 0.079, "ci_low": 0.0012, "ci_high": 0.0034,
                          "p_permutation": 3.153e-05, "p_wilcoxon": 0.0001234}}
    report.print_table(report.comparison_table(a, b, paired, title="paired over 8,442 users"), console)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    assert f"A = {a}" in text and f"B = {b}" in text  # the compare table names both runs in full
    assert any(f"= {a}" in line for line in lines if line.startswith("runs:"))  # the legend of shortened headers
    for number in ("3.153e-05", "0.0001234", "[+0.0012, +0.0034]", "0.0584", "0.0630", "+7.88%", "[0.0551,", "0.0702]"):
        assert number in text, number
    assert any("sasrec-id-" in line for line in lines) and any("debiased_ce" in line for line in lines)


def test_short_names_drop_the_default_stamp_only_when_still_distinct():
    assert report.short_names(["20261206-030912-sasrec-id-bce", "20261206-031544-gru4rec-id-bce"]) == ["sasrec-id-bce", "gru4rec-id-bce"]
    same = ["20261206-030912-sasrec-id-bce", "20261207-101010-sasrec-id-bce"]
    assert report.short_names(same) == same
    assert report.short_names(["Pop", "my-run"]) == ["Pop", "my-run"]


def test_plot_writes_png_and_refuses_overwrite(tmp_path):
    out = tmp_path / "k.png"
    report.plot_metrics_vs_k(out, [("A", np.array([1.0, 4.0, 30.0]))], ks=(1, 5, 10))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RecxError, match="already exists"):
        report.plot_metrics_vs_k(out, [("A", np.array([1.0]))])
