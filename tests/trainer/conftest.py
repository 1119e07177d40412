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
