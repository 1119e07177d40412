"""Negative samplers: which items a loss contrasts with the target, apart from the loss itself.

- :class:`SharedNegatives`: N items per batch drawn from a proposal q (uniform or popularity ** alpha),
  shared by every position; the loss corrects its logits by log q (sampled softmax).
- :class:`UnseenNegatives`: one uniform item per position that the row's user never had (BCE).

Each owns a ``torch.Generator`` whose state the loss checkpoints (``state`` / ``load_state``),
one stream per rank, so a resumed run draws the same negatives as one never interrupted.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def proposal(item_counts: torch.Tensor, kind: str, alpha: float = 1.0) -> torch.Tensor:
    """[N+1] float64 sampling distribution over items (0 on padding): uniform, or
    proportional to count ** alpha."""
    if kind == "uniform":
        q = torch.ones(len(item_counts), dtype=torch.float64)
    elif kind == "popularity":
        q = item_counts.double().clamp(min=1.0) ** alpha
    else:
        raise ValueError(f"sampler must be 'uniform' or 'popularity', got {kind!r}")
    q[0] = 0.0
    return q / q.sum()


class _Seeded:
    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class SharedNegatives(_Seeded):
    """``num`` items per batch drawn with replacement from ``q`` [N+1]."""

    def __init__(self, q: torch.Tensor, num: int, seed: int = 0):
        super().__init__(seed)
        self.q = q.float()
        self.num = num

    def sample(self) -> torch.Tensor:
        """[num] int64 item ids."""
        return torch.multinomial(self.q, self.num, replacement=True, generator=self.generator)


class UnseenNegatives(_Seeded):
    """One uniform item per position, never one of the row's user items (nor padding)."""

    def __init__(self, item_mask_fn: Callable[[torch.Tensor], torch.Tensor], seed: int = 0):
        super().__init__(seed)
        self.item_mask_fn = item_mask_fn  # rows [B] -> [B, N+1] bool, the row's user items

    def sample(self, rows: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """rows [B] -> [B, L] int64 item ids."""
        excluded = self.item_mask_fn(rows)
        excluded[:, 0] = True
        return sample_excluding(excluded, shape, self.generator)


def sample_excluding(excluded: torch.Tensor, shape: tuple[int, int], generator: torch.Generator, rounds: int = 4) -> torch.Tensor:
    """Uniform items in 1..N, never one that ``excluded`` marks for the row.

    A few vectorised rejection rounds handle typical users; rows still holding excluded draws
    (users who saw most of the catalog) are then drawn exactly from their allowed items.

    Args:
        excluded: [B, N+1] bool, True for items row b must not draw (its user's items).
        shape: (B, L) of the result.
    Returns:
        [B, L] int64 item indices.
    """
    num_items = excluded.shape[1] - 1
    out = torch.randint(1, num_items + 1, shape, generator=generator)
    for _ in range(rounds):
        bad = excluded.gather(1, out)
        if not bad.any():
            return out
        out[bad] = torch.randint(1, num_items + 1, (int(bad.sum()),), generator=generator)
    bad = excluded.gather(1, out)
    rows = bad.any(1).nonzero().squeeze(1)
    allowed = (~excluded[rows]).float()
    allowed[:, 0] = 0.0
    if (allowed.sum(1) == 0).any():
        raise ValueError("cannot sample a negative: a user interacted with every item of the catalog")
    redraw = torch.multinomial(allowed, shape[1], replacement=True, generator=generator)  # [R, L]
    out[rows] = torch.where(bad[rows], redraw, out[rows])
    return out
