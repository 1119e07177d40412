"""A large synthetic interaction log in plain CSV, for sizing a machine (benchmarks/scale.py) and
for testing the import -> train -> eval path at any size.

Unlike :mod:`recx.data.synth` (a small multimodal catalog whose content predicts behaviour),
this log is built for size and realistic skew, in seconds even at 10M rows:
- item popularity is Zipf-like, weight ~ 1 / (rank + 10) ** 0.9, with popularity ranks shuffled
  over the item ids;
- sequence lengths are 2 + Geometric(1 / (mean - 2)): at least 3, mean ``MEAN_LENGTH``;
- half the next items lie within 3 ids of the previous one (a pattern a model can learn);
- timestamps increase within each user;
- every item has a title, a category and a brand (the items file).

Items = interactions / MEAN_LENGTH (at least 100); users come out about as many.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from recx.artifacts import atomic_write
from recx.data.synth import ADJECTIVES, BRANDS, CATEGORIES, COLOURS, MATERIALS

MEAN_LENGTH = 10
NEIGHBOUR_SHARE = 0.5
NEIGHBOUR_SPREAD = 3
POPULARITY_EXPONENT = 0.9
INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.csv"


def sample_log(interactions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(user [M], item [M], timestamp [M], number of items): M >= ``interactions`` rows,
    grouped by user, 0-based codes."""
    if interactions < 3:
        raise ValueError(f"interactions must be at least 3, got {interactions}")
    rng = np.random.default_rng(seed)
    num_items = max(100, interactions // MEAN_LENGTH)
    lengths = 2 + rng.geometric(1 / (MEAN_LENGTH - 2), size=interactions // 3 + 1)
    users = int(np.searchsorted(np.cumsum(lengths), interactions)) + 1
    lengths = lengths[:users]
    total = int(lengths.sum())
    weight = 1.0 / (np.arange(num_items) + 10.0) ** POPULARITY_EXPONENT
    item_of_rank = rng.permutation(num_items)
    items = item_of_rank[rng.choice(num_items, size=total, p=weight / weight.sum())]
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    near = rng.random(total) < NEIGHBOUR_SHARE
    near[starts] = False
    # a run of neighbours is a random walk from the last freely drawn item before it
    walk = np.cumsum(rng.integers(-NEIGHBOUR_SPREAD, NEIGHBOUR_SPREAD + 1, total))
    anchor = np.maximum.accumulate(np.where(near, 0, np.arange(total)))
    items = np.clip(items[anchor] + walk - walk[anchor], 0, num_items - 1)
    user = np.repeat(np.arange(users), lengths)
    clock = np.cumsum(rng.integers(60, 86_400, total))
    # each user's clock restarts at a random day of 2017-2020
    offset = rng.integers(1_500_000_000, 1_600_000_000, users) - clock[starts]
    return user, items, clock + np.repeat(offset, lengths), num_items


def write_csv_log(folder: str | os.PathLike, interactions: int, seed: int = 0) -> dict[str, int]:
    """Write ``interactions.csv`` (user_id, item_id, timestamp) and ``items.csv`` (item_id,
    title, category, brand) into ``folder`` (each through a temp file and a rename) -> counts
    {interactions, users, items}.  Import with ``recx data import csv interactions.csv --items items.csv``."""
    folder = Path(folder)
    user, item, stamp, num_items = sample_log(interactions, seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = (f"u{u},i{i},{t}" for u, i, t in zip(user.tolist(), item.tolist(), stamp.tolist()))
    _write_lines(folder / INTERACTIONS_FILE, "user_id,item_id,timestamp", rows)
    _write_lines(folder / ITEMS_FILE, "item_id,title,category,brand", _item_rows(num_items, seed))
    return {"interactions": len(user), "users": int(user[-1]) + 1, "items": num_items}


def _item_rows(num_items: int, seed: int) -> Iterable[str]:
    pick = np.random.default_rng(seed + 1).integers(0, 1 << 30, (num_items, 5))
    colours = list(COLOURS)
    for k, (a, c, m, cat, b) in enumerate(pick.tolist()):
        category = CATEGORIES[cat % len(CATEGORIES)]
        title = f"{ADJECTIVES[a % len(ADJECTIVES)].title()} {colours[c % len(colours)]} {MATERIALS[m % len(MATERIALS)]} {category} no. {k}"
        yield f"i{k},{title},{category},{BRANDS[b % len(BRANDS)]}"


def _write_lines(path: Path, header: str, lines: Iterable[str]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(header + "\n")
            batch: list[str] = []
            for line in lines:
                batch.append(line)
                if len(batch) == 1 << 16:
                    f.write("\n".join(batch) + "\n")
                    batch.clear()
            if batch:
                f.write("\n".join(batch) + "\n")

    atomic_write(path, write)
