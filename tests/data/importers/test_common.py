import gzip

import numpy as np
import pytest

from recx.data.importers.common import (
    Filters,
    ImportFault,
    InteractionLog,
    Ledger,
    TextSpec,
    TimeParser,
    build_sequences,
    read_lines,
    read_table,
)


def _log(rows):
    log = InteractionLog()
    for u, i, t in rows:
        log.add(u, i, t)
    return log


def _run(rows, **kw):
    ledger = Ledger()
    users, items, seqs, stamps = build_sequences(_log(rows), Filters(**kw), ledger)
    log = _log(rows)
    named = {log.users.ids[u]: [log.items.ids[items[p]] for p in s] for u, s in zip(users, seqs)}
    return named, ledger.outcomes, [log.items.ids[c] for c in items], stamps


def test_orders_by_time_and_breaks_ties_by_file_order():
    rows = [("u", "c", 5), ("u", "a", 1), ("u", "b", 5), ("u", "d", 3)]
    named, outcomes, items, stamps = _run(rows)
    assert named == {"u": ["a", "d", "c", "b"]}
    assert stamps[0].tolist() == [1, 3, 5, 5]
    assert items == ["c", "a", "b", "d"]  # catalog in order of first appearance in the file
    assert outcomes == {"kept": 4}


def test_min_length_is_never_below_three():
    named, outcomes, _, _ = _run([("u", "a", 1), ("u", "b", 2), ("v", "a", 1), ("v", "b", 2), ("v", "c", 3)], min_length=1)
    assert named == {"v": ["a", "b", "c"]}
    assert outcomes == {"kept": 3, "filtered: min sequence length": 2}


def test_consecutive_dedup_keeps_non_adjacent_repeats():
    rows = [("u", "a", 1), ("u", "a", 2), ("u", "b", 3), ("u", "a", 4), ("u", "c", 5)]
    named, outcomes, _, _ = _run(rows, dedup="consecutive")
    assert named == {"u": ["a", "b", "a", "c"]}
    assert outcomes["filtered: consecutive duplicate"] == 1


def test_same_time_dedup_drops_repeated_rows_only():
    rows = [("u", "a", 1), ("u", "b", 1), ("u", "a", 1), ("u", "a", 2), ("u", "c", 3)]
    named, outcomes, _, _ = _run(rows, dedup="same-time")
    assert named == {"u": ["a", "b", "a", "c"]}
    assert outcomes == {"kept": 4, "filtered: same (user, item, time) repeated": 1}


def test_max_length_keeps_the_most_recent():
    rows = [("u", x, t) for t, x in enumerate("abcdef")] + [("v", "a", 0), ("v", "b", 1), ("v", "c", 2)]
    named, outcomes, _, _ = _run(rows, max_length=4)
    assert named == {"u": ["c", "d", "e", "f"], "v": ["a", "b", "c"]}
    assert outcomes["filtered: max sequence length (oldest dropped)"] == 2


def test_k_core_iterates_to_a_fixed_point():
    # with k=3: item z has 1 interaction -> dropped; then user w falls to 2 -> dropped;
    # then item y falls to 2 -> dropped, which takes user v down to 2 -> dropped.
    rows = [
        ("u", "a", 1), ("u", "b", 2), ("u", "c", 3),
        ("t", "a", 1), ("t", "b", 2), ("t", "c", 3),
        ("s", "a", 1), ("s", "b", 2), ("s", "c", 3), ("s", "y", 4),
        ("v", "a", 1), ("v", "y", 2), ("v", "b", 3),
        ("w", "y", 1), ("w", "c", 2), ("w", "z", 3),
    ]
    named, outcomes, items, _ = _run(rows, k_core=3)
    assert named == {"u": list("abc"), "t": list("abc"), "s": list("abc")}
    assert sorted(items) == ["a", "b", "c"]
    assert sum(outcomes.values()) == len(rows)
    assert outcomes["kept"] == 9
    for u, s in named.items():
        assert len(s) >= 3
    counts = {i: sum(s.count(i) for s in named.values()) for i in items}
    assert min(counts.values()) >= 3


def test_filters_validate_their_options():
    with pytest.raises(ValueError, match="dedup must be one of"):
        Filters(dedup="always")
    with pytest.raises(ValueError, match="max_length"):
        Filters(max_length=2)
    assert Filters(min_length=0).min_length == 3


def test_text_spec_joins_fields_and_applies_templates():
    row = {"title": "Lamp.", "brand": "Acme", "categories": ["Home", "Lighting", "Home"], "empty": " "}
    assert TextSpec(["title", "brand", "categories", "empty"]).render(row) == "Lamp. Acme. Home, Lighting."
    assert TextSpec(["title", "brand"], "{title} by {brand}").render(row) == "Lamp. by Acme"
    assert TextSpec(["empty"]).render(row) is None
    with pytest.raises(ImportFault, match=r"\{colour\}"):
        TextSpec(["title"], "{colour}").render(row)
    with pytest.raises(ImportFault, match="text field 'color' is not a column"):
        TextSpec(["color"]).check(["title", "brand"], "items.csv")


def test_time_parser_numbers_and_dates(tmp_path):
    p = tmp_path / "x.csv"
    assert TimeParser()("17.9", p, 3, "ts") == 17
    assert TimeParser("%Y-%m-%d")("1970-01-02", p, 3, "ts") == 86400
    with pytest.raises(ImportFault, match=r"x\.csv:3: column 'ts': '2020-01-01' is not a number"):
        TimeParser()("2020-01-01", p, 3, "ts")
    with pytest.raises(ImportFault, match="does not match time format"):
        TimeParser("%Y-%m-%d")("01/02/2020", p, 4, "ts")


def test_read_table_faults(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: malformed row: expected 2 fields"):
        list(read_table(p, ",", required=["a"]))
    p.write_text("a,b\n1,2\na,b\n3,4\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: header line repeated"):
        list(read_table(p, ","))
    p.write_text("a,a\n1,2\n")
    with pytest.raises(ImportFault, match=r"t\.csv:1: header names column 'a' twice"):
        list(read_table(p, ","))
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFault, match=r"t\.csv:1: missing column 'c' \(header has a, b\)"):
        list(read_table(p, ",", required=["c"]))
    p.write_text("")
    with pytest.raises(ImportFault, match=r"t\.csv: empty file"):
        list(read_table(p, ","))
    p.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: not valid utf-8"):
        list(read_table(p, ","))


def test_read_table_quoted_fields_report_the_first_line_of_a_row(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,desc\n1,"two\nlines, with comma"\n2,plain\n3\n')
    rows = read_table(p, ",", quoted=True)
    assert next(rows) == (2, {"id": "1", "desc": "two\nlines, with comma"})
    assert next(rows) == (4, {"id": "2", "desc": "plain"})
    with pytest.raises(ImportFault, match=r"q\.csv:5: malformed row"):
        next(rows)


def test_read_lines_gzip_and_bom(tmp_path):
    p = tmp_path / "x.txt.gz"
    with gzip.open(p, "wb") as f:
        f.write("\ufeffhello\r\nw\u00f6rld\n".encode("utf-8"))
    assert list(read_lines(p)) == [(1, "hello"), (2, "w\u00f6rld")]
    assert list(read_lines(_latin1(tmp_path), "latin-1")) == [(1, "caf\u00e9")]


def _latin1(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes(b"caf\xe9\n")
    return p


def test_ledger_lines_sum_and_order():
    led = Ledger()
    led.read("dir/a.csv", 5)
    led.outcomes.update({"kept": 3, "filtered: k-core (item)": 2})
    led.warnings["items without text"] = 1
    assert led.lines() == [
        "read 5 rows from a.csv",
        "interaction rows: 5",
        "  kept: 3",
        "  filtered: k-core (item): 2",
        "warning: items without text: 1",
    ]
