"""Encoding users for evaluation, batched by history length.

Padding every history to ``max_len`` wastes most of the encoder's work when histories are
short (amazon-scientific: 6 items on average, padded to 50).  ``encode_users`` groups users
by history length (capped at ``max_len``), so no batch holds any padding, and sizes each batch
to the same token budget as one full-width batch.  For encoders whose output at
the last position does not depend on how much left padding precedes the history (SASRec in
recx: right-aligned positions ``position.weight[-L:]`` and padding keys masked out of
attention) the result equals ``SequentialRecommender.user_vectors`` up to float rounding.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from recx.errors import RecxError

# Encoders whose last-position state is invariant to extra left padding.
LENGTH_INVARIANT = ("SASRec",)


def supports_bucketing(model: torch.nn.Module) -> bool:
    """True if ``model.encoder`` is one of the LENGTH_INVARIANT encoders."""
    return type(getattr(model, "encoder", None)).__name__ in LENGTH_INVARIANT


@torch.no_grad()
def encode_users(
    model: torch.nn.Module,
    histories: Sequence[np.ndarray],
    max_len: int,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """State after each history's last item: [U, D] float32, in the order of ``histories``.

    Args:
        model: callable as ``model(inputs [B, L] int64, 0 = padding) -> [B, L, D]``, left
            padding, with an ``encoder`` attribute (see ``supports_bucketing``).
        histories: per user, time-ordered item indices; the last ``max_len`` are used.
    """
    if not supports_bucketing(model):
        raise RecxError(f"length-bucketed encoding is only exact for {', '.join(LENGTH_INVARIANT)} encoders")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    lengths = np.array([min(len(h), max_len) for h in histories], dtype=np.int64)
    if (lengths == 0).any():
        raise RecxError(f"{int((lengths == 0).sum())} users have an empty history; nothing to encode")
    budget = batch_size * max_len  # tokens per forward pass, as many as one full-width batch
    out: np.ndarray | None = None
    was_training = model.training
    model.eval()
    try:
        for width in np.unique(lengths):
            users = np.flatnonzero(lengths == width)
            rows = max(1, budget // int(width))
            for lo in range(0, len(users), rows):
                idx = users[lo : lo + rows]
                batch = np.stack([np.asarray(histories[u][-width:], dtype=np.int64) for u in idx])
                states = model(torch.from_numpy(batch).to(dev))[:, -1].float().cpu().numpy()
                if out is None:
                    out = np.empty((len(histories), states.shape[1]), dtype=np.float32)
                out[idx] = states
    finally:
        model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
