"""Tiny datasets and trained runs shared by the inference tests (trained once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from recx.data.dataset import Item, write_dataset


def make_dataset(root, prefix: str = "i", n_items: int = 40, n_users: int = 60, seed: int = 0):
    """``n_items`` items in 4 'categories' (ids ``{prefix}0``...); users walk mostly within one."""
    rng = np.random.default_rng(seed)
    items = [Item(f"{prefix}{k}", text=f"item {k} of category {k % 4}") for k in range(n_items)]
    seqs = [[int(rng.choice(np.arange(u % 4, n_items, 4))) + 1 for _ in range(rng.integers(4, 12))] for u in range(n_users)]
    return write_dataset(root, items, [f"u{u}" for u in range(n_users)], seqs, {"name": f"tiny-{prefix}"})


@pytest.fixture
def make_tiny_dataset():
    return make_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("inference") / "data")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_dataset):
    """trained(model="sasrec", item_tower="id") -> run dir, trained once per session."""
    from recx.trainer import TrainConfig, fit

    runs = tmp_path_factory.mktemp("runs")
    cache: dict[tuple[str, str], object] = {}

    def text_store() -> str:
        """A random 24-d 'text' store of the tiny catalog (every 5th item without text)."""
        from recx.featurize.store import StoreWriter

        path = runs / "text.h5"
        if not path.exists():
            n = tiny_dataset.num_items
            rows = np.array([i for i in range(1, n + 1) if i % 5], dtype=np.int64)
            attrs = {"modality": "text", "catalog_fingerprint": tiny_dataset.catalog_fingerprint, "item_count": n, "encoder": "random"}
            w = StoreWriter(path, n + 1, 24, attrs, dtype="float32", planned=len(rows))
            w.write_rows(rows, np.random.default_rng(0).standard_normal((len(rows), 24)).astype(np.float32))
            w.finish()
        return str(path)

    def get(model: str = "sasrec", item_tower: str = "id", **kw):
        key = (model, item_tower, *sorted(kw.items()))
        if key not in cache:
            name = "-".join([model, item_tower, *map(str, kw.values())])
            if item_tower != "id":
                kw["stores"] = {"text": text_store()}
            cfg = TrainConfig.from_options(
                dataset=str(tiny_dataset.path), item_tower=item_tower, model=model, hidden=16, layers=1, heads=2,
                max_len=8, epochs=2, batch_size=16, runs_dir=str(runs), name=name, seed=0, **kw,
            )
            cache[key] = fit(cfg, progress=False).run_dir
        return cache[key]

    return get
