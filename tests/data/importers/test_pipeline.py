import pytest

from recx.data.importers.pipeline import Filters, InteractionLog, Ledger, build_sequences


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
    assert outcomes == {"kept": 4, "filtered: exact duplicate (same user, item, time)": 1}


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


def test_ledger_lines_sum_and_order():
    led = Ledger()
    led.read("dir/a.csv", 5)
    led.read("dir/items.csv", 4)
    led.outcomes.update({"skipped: rating below 4": 1, "kept": 3, "filtered: k-core (item)": 2, "filtered: min sequence length": 1})
    led.warnings["items without text"] = 1
    assert led.lines() == [
        "input rows read: 5 from a.csv",
        "input rows read: 4 from items.csv",
        "input rows: 7 (kept 3, filtered 3, skipped 1)",
        "  filtered: k-core (item): 2",
        "  filtered: min sequence length: 1",
        "  skipped: rating below 4: 1",
        "warning: items without text: 1",
    ]
