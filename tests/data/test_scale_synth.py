"""The synthetic log benchmarks/scale.py sizes machines with: its promised shape, seeded, and
importable by the CSV importer with every row kept."""

from __future__ import annotations

import numpy as np

from recx.data.importers.csv_generic import import_csv
from recx.data.scale_synth import INTERACTIONS_FILE, ITEMS_FILE, MEAN_LENGTH, sample_log, write_csv_log


def test_log_shape_skew_and_order():
    user, item, stamp, num_items = sample_log(50_000, seed=3)
    assert len(user) >= 50_000 and num_items == 50_000 // MEAN_LENGTH
    lengths = np.bincount(user)
    assert lengths.min() >= 3 and abs(lengths.mean() - MEAN_LENGTH) < 0.3
    assert np.all(np.diff(user) >= 0)  # grouped by user
    same_user = np.diff(user) == 0
    assert np.all(np.diff(stamp)[same_user] > 0)  # time increases within a user
    counts = np.sort(np.bincount(item, minlength=num_items))[::-1]
    assert counts[:500].sum() > 0.4 * len(item) > 2 * counts[-2500:].sum()  # the top 10% of items: over 40% of the rows
    near = np.abs(np.diff(item))[same_user] <= 3
    assert 0.48 < near.mean() < 0.53  # the learnable pattern: half the next items are neighbours
    again = sample_log(50_000, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((user, item, stamp), again[:3]))


def test_csv_imports_every_row(tmp_path):
    counts = write_csv_log(tmp_path / "csv", 2_000, seed=0)
    assert not list((tmp_path / "csv").glob("*.partial"))
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [INTERACTIONS_FILE, ITEMS_FILE]  # no partial file of any name
    ds = import_csv(tmp_path / "csv" / INTERACTIONS_FILE, tmp_path / "data", items=tmp_path / "csv" / ITEMS_FILE)
    assert ds.meta["counts"]["interactions"] == counts["interactions"] and ds.num_users == counts["users"]
    assert ds.texts[1].startswith(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) and " no. " in ds.texts[1]
