"""Shared fixtures for trainer tests: tiny item tables that act as ItemVectors."""

from __future__ import annotations

import pytest
import torch


class TableItems:
    """ItemVectors over a fixed [N+1, D] table (row 0 = padding)."""

    def __init__(self, table: torch.Tensor):
        self.weight = table

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        return self.weight[items]

    def table(self) -> torch.Tensor:
        return self.weight


@pytest.fixture
def table_items():
    return TableItems


@pytest.fixture
def make_text_dataset():
    """make(root, n_items, n_users) -> SequenceDataset whose items have short texts (every 7th none)."""
    import numpy as np

    from recx.data.dataset import Item, write_dataset

    def make(root, n_items: int = 30, n_users: int = 24, seed: int = 0):
        rng = np.random.default_rng(seed)
        words = "red blue green widget gadget sensor cable roll grit".split()
        items = [Item(f"i{k}", text=None if k % 7 == 0 else " ".join(rng.choice(words, size=int(rng.integers(1, 6))))) for k in range(n_items)]
        seqs = [[int(x) for x in rng.integers(1, n_items + 1, size=int(rng.integers(4, 9)))] for _ in range(n_users)]
        return write_dataset(root / "data", items, [f"u{u}" for u in range(n_users)], seqs, {"name": "text-tiny"})

    return make
