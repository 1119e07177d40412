"""User encoders: histories of item indices -> user vectors, beside the catalog's item table.

The inference layer only needs two things from a model (``UserEncoder``):

- ``item_table()`` -> [N+1, D] float32 (row 0 padding; score = inner product), and
- ``encode(histories)`` -> [U, D] float32, one vector per history of item indices 1..N, and
- ``history_scores(histories)`` -> the model's learned scores for each user's own items
  (recx/trainer/history.py), which every ranking adds, or None for a plain dot-product model.

Two implementations:

- :class:`ModelUserEncoder`: a trained ``SequentialRecommender`` (what ``recx eval`` scores).
- :class:`ScriptedUserEncoder`: an exported TorchScript :class:`HistoryEncoder` plus the
  exported item table (no recx training code needed to run it).

Any other model family (e.g. one whose user encoder reads item tokens) plugs in by providing
the same two methods.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from recx.errors import RecxError
from recx.evaluate.retrieval import HistoryScores
from recx.trainer.data import left_pad
from recx.trainer.history import HistoryTerm, history_scores


class UserEncoder(Protocol):
    """What the inference layer needs from a model."""

    @property
    def dim(self) -> int: ...

    def item_table(self) -> np.ndarray:
        """[N+1, D] float32 catalog vectors (row 0 padding)."""
        ...

    def encode(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[U, D] float32: the user vector after each history (int64 item indices 1..N)."""
        ...

    def history_scores(self, histories: Sequence[np.ndarray]) -> HistoryScores | None:
        """What each history's own items add to their scores (None: nothing)."""
        ...

    def history_encoder(self) -> "HistoryEncoder":
        """The frozen, scriptable form (``recx export``); raises RecxError, saying why, for
        encoders that have none (ensembles, language-model user towers, an export itself)."""
        ...


def length_batches(padded: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows sorted by history length, cut into batches trimmed to their longest history.

    padded [U, W] left-padded -> yields (row indices [B], trimmed rows [B, L<=W]); L >= 1.
    """
    lengths = (padded > 0).sum(1)
    order = np.argsort(lengths, kind="stable")
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        longest = max(1, int(lengths[idx].max()))
        yield idx, padded[idx, padded.shape[1] - longest :]


class HistoryEncoder(nn.Module):
    """A self-contained, scriptable user encoder: left-padded item indices -> user vectors.

    forward(padded [B, L] int64, 0 = padding, newest item last, L <= max_len, or max_len - 1
    for a bidirectional encoder, which reads a mask position after the history) -> [B, D].
    Input item vectors are rows of the frozen catalog table (what the tower gives in eval
    mode), so the module needs neither the tower nor its stores or pretrained encoders.
    """

    def __init__(self, table: torch.Tensor, encoder: nn.Module, causal: bool, mask_vector: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("table", table.detach().float().clone())
        self.encoder = encoder
        self.causal = causal
        mv = mask_vector if mask_vector is not None else torch.zeros(table.shape[1])
        self.register_buffer("mask_vector", mv.detach().float().clone())

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        if not self.causal:  # a mask position after the history; its state predicts the next item
            padded = torch.cat([padded, torch.ones(padded.shape[0], 1, dtype=padded.dtype, device=padded.device)], 1)
        vectors = self.table[padded]
        if not self.causal:
            b, d = vectors.shape[0], vectors.shape[2]
            vectors = torch.cat([vectors[:, :-1], self.mask_vector.view(1, 1, d).expand(b, 1, d)], 1)
        return self.encoder(vectors, padded > 0, True)[:, -1]


class HistoryTermEncoder(HistoryEncoder):
    """A HistoryEncoder whose model scores the user's own items too: ``history_scores(padded
    [B, W])`` -> (items [B, W], values [B, W]) as :meth:`HistoryTerm.last_scores`, where W is the
    term's window (left-padded, newest last)."""

    def __init__(self, table: torch.Tensor, encoder: nn.Module, causal: bool, history: HistoryTerm, mask_vector: torch.Tensor | None = None):
        super().__init__(table, encoder, causal, mask_vector)
        self.history = history

    @torch.jit.export
    def history_scores(self, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.history.last_scores(padded)


class ModelUserEncoder:
    """A trained SequentialRecommender as a UserEncoder (exactly what ``recx eval`` ranks with)."""

    def __init__(self, model, max_len: int, batch_size: int = 1024):
        self.model = model.eval()
        self.max_len = int(max_len)
        self.batch_size = int(batch_size)
        self._table: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.model.tower.dim)

    @property
    def causal(self) -> bool:
        return bool(self.model.causal)

    @property
    def history_window(self) -> int:
        """Items the model's history term reads (0: it has none, or validation turned it off)."""
        term = self.model.history_term
        return term.window if term is not None and term.is_active else 0

    @torch.no_grad()
    def item_table(self) -> np.ndarray:
        if self._table is None:
            self._table = self.model.item_table().float().cpu().numpy()
        return self._table

    def encode(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        if not len(histories):
            return np.zeros((0, self.dim), np.float32)
        # history items are rows of the table the ranking uses (each item's tower runs once)
        table = torch.from_numpy(self.item_table()).to(next(self.model.parameters()).device)
        return self.model.user_vectors(list(histories), self.max_len, self.batch_size, table=table).cpu().numpy()

    def history_scores(self, histories: Sequence[np.ndarray]) -> HistoryScores | None:
        term = self.model.history_term
        return term.scores(histories) if term is not None and term.is_active else None

    def history_encoder(self) -> HistoryEncoder:
        """The frozen, scriptable form of this model (for ``recx export``)."""
        import copy

        encoder = copy.deepcopy(self.model.sequence_encoder()).cpu().eval()
        table = torch.from_numpy(self.item_table())
        term = self.model.history_term
        if self.history_window:
            return HistoryTermEncoder(table, encoder, self.causal, copy.deepcopy(term).cpu().eval(), encoder.mask_vector).eval()
        return HistoryEncoder(table, encoder, self.causal, encoder.mask_vector).eval()


class ScriptedUserEncoder:
    """An exported TorchScript HistoryEncoder + its item table as a UserEncoder.

    ``history_window`` W > 0: the module is a HistoryTermEncoder whose term reads the last W items."""

    def __init__(self, module: torch.jit.ScriptModule, table: np.ndarray, max_len: int, causal: bool, batch_size: int = 1024,
                 device: torch.device | str = "cpu", history_window: int = 0):
        self.device = torch.device(device)
        self.module = module.eval().to(self.device)
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.width = int(max_len) if causal else int(max_len) - 1
        self.batch_size = int(batch_size)
        self.history_window = int(history_window)

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def item_table(self) -> np.ndarray:
        return self.table

    def history_encoder(self) -> HistoryEncoder:
        raise RecxError("this is already an export (TorchScript user encoder + item table); copy its folder to serve it elsewhere")

    @torch.no_grad()
    def encode(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(histories), self.dim), np.float32)
        if not len(histories):
            return out
        for idx, chunk in length_batches(left_pad(histories, self.width), self.batch_size):
            out[idx] = self.module(torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)).float().cpu().numpy()
        return out

    def history_scores(self, histories: Sequence[np.ndarray]) -> HistoryScores | None:
        if not self.history_window:
            return None
        return history_scores(self.module.history_scores, histories, self.history_window, self.batch_size, self.device)
