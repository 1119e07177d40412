"""Batching user sequences for seq2seq training and for scoring.

Sequences are left-padded (right-aligned) so the last real item always sits at position -1;
index 0 is padding.  A training row holds the last ``max_len + 1`` items of a user's training
sequence: inputs are ``row[:-1]``, targets ``row[1:]``, so every position predicts its next
item in one forward pass.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch


def left_pad(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Last ``length`` items of each sequence, left-padded with 0: [U, length] int64."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for u, seq in enumerate(sequences):
        tail = seq[-length:]
        if len(tail):
            out[u, length - len(tail) :] = tail
    return out


class Batch(NamedTuple):
    inputs: torch.Tensor  # [B, L] int64, 0 = padding
    targets: torch.Tensor  # [B, L] int64, 0 = no target at this position
    rows: torch.Tensor  # [B] int64, row ids (for per-user item sets)
    masked: torch.Tensor | None = None  # [B, L] bool, positions shown as the mask vector (BERT4Rec)


def causal_targets(batch: Batch) -> torch.Tensor:
    """[B, L] next-item targets, 0 where the input is padding: such a position has no history
    (a row shorter than its trimmed batch would otherwise predict its first item from padding)."""
    return torch.where(batch.inputs > 0, batch.targets, torch.zeros_like(batch.targets))


def prefixes(sequences: Sequence[np.ndarray], last: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Every prefix of each sequence that ends in one of its last ``last`` items (each at least
    two items: a history and its next item): (prefixes, [R] index of each one's sequence)."""
    rows: list[np.ndarray] = []
    owner: list[int] = []
    for u, seq in enumerate(sequences):
        for end in range(max(2, len(seq) - last + 1), len(seq) + 1):
            rows.append(seq[:end])
            owner.append(u)
    return rows, np.asarray(owner, dtype=np.int64)


class SequenceBatches:
    """Shuffled, length-bucketed seq2seq batches over users' training sequences.

    Most users are short (amazon-scientific: ~5 training items against max_len 50), so a
    batch padded to max_len is ~90% padding.  Each epoch shuffles the users, sorts them by
    length within pools of ``pool`` batches, cuts batches, shuffles the batch order, and trims
    every batch's leading all-padding columns: the model sees the same rows, ~5x fewer
    positions.  The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed at an
    epoch boundary replays exactly the batches an uninterrupted run would have seen.

    Args:
        train_sequences: per user, the time-ordered training items (``seq[:-2]``).
        max_len: positions per row (L).
        batch_size: users per batch (B).
        seed: base seed of the shuffling.
        rank / world_size: shard of every epoch's permutation this process iterates
            (distributed training keeps every user exactly once per epoch across ranks).
        pool: batches per sorting pool (1 = no bucketing, plain shuffled batches).
        prefix_rows: 0 = one row per user, every position a target; N = every prefix of each
            user's last N training items is its own row whose only target is that item (the
            Reo-LM / ROMA recipe: each row is one user state and one next item).
    """

    def __init__(
        self,
        train_sequences: Sequence[np.ndarray],
        max_len: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pool: int = 16,
        prefix_rows: int = 0,
    ):
        users = [s for s in train_sequences if len(s) >= 2]  # a row needs one (input, target) pair
        # every training item of each user (not only the window), for negative exclusion
        self._items = torch.from_numpy(np.concatenate(users).astype(np.int64)) if users else torch.zeros(0, dtype=torch.long)
        self._lengths = torch.tensor([len(s) for s in users], dtype=torch.long)
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.long), self._lengths.cumsum(0)])
        self.prefix_rows = prefix_rows
        if prefix_rows:
            rows, owner = prefixes(users, prefix_rows)
        else:
            rows, owner = users, np.arange(len(users))
        self.rows = torch.from_numpy(left_pad(rows, max_len + 1))  # [R, L+1]
        self.row_user = torch.from_numpy(owner.astype(np.int64))  # [R] the user of each row
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.pool = pool
        self.lengths = (self.rows > 0).sum(1)  # [U'] real items per row (inputs + last target)

    @property
    def num_rows(self) -> int:
        return self.rows.shape[0]

    def num_batches(self) -> int:
        per_rank = -(-self.num_rows // self.world_size)
        return -(-per_rank // self.batch_size)

    def targets_per_batch(self) -> float:
        """Next-item targets (positions with a real input and a real next item) per step,
        averaged over an epoch and summed over ranks."""
        targets = self.num_rows if self.prefix_rows else int((self.lengths - 1).sum())
        return float(targets) / self.num_batches()

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_rows, generator=g)

    def epoch(self, epoch: int, part: int = 0, parts: int = 1) -> Iterator[Batch]:
        """Yields batches of inputs [B, L] and targets [B, L]; 0 marks padding in both.  With
        ``parts`` > 1 only the ``part``-th of the epoch's batches (validation intervals)."""
        order = self.permutation(epoch)
        if self.world_size > 1:
            # pad the permutation so every rank gets the same number of batches
            per_rank = -(-len(order) // self.world_size)
            order = torch.cat([order, order[: per_rank * self.world_size - len(order)]])
            order = order[self.rank :: self.world_size]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 7_919)
        batches: list[torch.Tensor] = []
        span = self.batch_size * self.pool
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            if self.pool > 1:
                chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        if self.pool > 1:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        cut = [len(batches) * p // parts for p in range(parts + 1)]
        for idx in batches[cut[part] : cut[part + 1]]:
            rows = self.rows[idx]
            width = int(self.lengths[idx].max())
            rows = rows[:, rows.shape[1] - width :]
            targets = rows[:, 1:]
            if self.prefix_rows:  # one target per row: its last item
                targets = torch.cat([torch.zeros_like(targets[:, :-1]), targets[:, -1:]], dim=1)
            yield Batch(rows[:, :-1], targets, self.row_user[idx])

    def num_part_batches(self, parts: int) -> int:
        """Batches of the largest of an epoch's ``parts`` parts."""
        n = self.num_batches()
        return max(n * (p + 1) // parts - n * p // parts for p in range(parts))

    def item_mask(self, rows: torch.Tensor, num_items: int) -> torch.Tensor:
        """[B, N+1] bool: True for every training item of each row's user (``rows``: the
        batch's user ids, ``Batch.rows``)."""
        lengths = self._lengths[rows]
        starts = self._offsets[rows]
        flat_rows = torch.repeat_interleave(torch.arange(len(rows)), lengths)
        within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
        cols = self._items[torch.repeat_interleave(starts, lengths) + within]
        mask = torch.zeros(len(rows), num_items + 1, dtype=torch.bool)
        mask[flat_rows, cols] = True
        return mask

