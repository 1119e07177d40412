
from recx.data.dataset import Item, write_dataset
from recx.data.info import describe, format_info, plot_info


def _tiny(tmp_path):
    items = [Item("a", text="A"), Item("b", image="b.png"), Item("c", text="C", image="c.png")] + [Item(f"x{k}") for k in range(97)]
    seqs = [[1, 2, 3], [1, 1, 2, 3], [1, 2, 1, 4, 5]]
    return write_dataset(tmp_path / "d", items, ["u1", "u2", "u3"], seqs, {"name": "tiny", "source": {"format": "test"}})


def test_describe_counts_lengths_coverage_and_popularity(tmp_path):
    d = describe(_tiny(tmp_path))
    assert (d["users"], d["items"], d["interactions"]) == (3, 100, 12)
    assert d["sequence_length"]["p50"] == 4.0 and d["sequence_length"]["p100"] == 5.0 and d["sequence_length"]["mean"] == 4.0
    assert d["items_never_seen"] == 95
    assert d["top1pct_items"] == 1 and d["top1pct_share"] == 5 / 12  # item 1: 5 of 12
    assert (d["with_text"], d["with_image"], d["with_both"], d["with_neither"]) == (2, 2, 1, 97)
    text = format_info(d)
    assert "users         3" in text
    assert "top 1% of items (1) hold 41.7% of interactions" in text
    assert "text          2 items (2.0%)" in text


def test_plot_writes_a_png(tmp_path):
    out = plot_info(_tiny(tmp_path), tmp_path / "sub" / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["p.png"]
