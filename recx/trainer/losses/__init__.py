"""Training losses, one per module; :func:`build_loss` picks one from a TrainConfig."""

from __future__ import annotations

from typing import Callable

import torch

from recx.trainer.config import TrainConfig
from recx.trainer.losses.base import SequenceLoss
from recx.trainer.losses.bce import BinaryCrossEntropy
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
from recx.trainer.losses.full_ce import FullCrossEntropy
from recx.trainer.losses.sampled_softmax import SampledSoftmax

__all__ = ["SequenceLoss", "BinaryCrossEntropy", "DebiasedCrossEntropy", "FullCrossEntropy", "SampledSoftmax", "build_loss"]


def build_loss(
    cfg: TrainConfig,
    item_counts: torch.Tensor,
    item_mask_fn: Callable[[torch.Tensor], torch.Tensor],
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    rank: int = 0,
) -> SequenceLoss:
    """The loss named by ``cfg.loss``.

    Args:
        item_counts: [N+1] training interactions per item (popularity for logQ terms).
        item_mask_fn: rows [B] -> [B, N+1] bool of each row's user items (bce negatives).
        gather: all-gather across ranks for the in-batch losses (None in one process).
        rank: this process's rank; samplers draw independent streams per rank.
    """
    seed = cfg.seed + 7919 * rank
    if cfg.loss == "bce":
        return BinaryCrossEntropy(item_mask_fn, seed=seed)
    if cfg.loss == "full_ce":
        return FullCrossEntropy(cfg.temperature)
    if cfg.loss == "debiased_ce":
        return DebiasedCrossEntropy(item_counts, cfg.alpha, cfg.temperature, cfg.mask_scope, gather)
    if cfg.loss == "sampled_softmax":
        return SampledSoftmax(item_counts, cfg.num_negatives, cfg.negative_sampler, cfg.alpha, cfg.temperature, seed, gather)
    raise ValueError(f"unknown loss {cfg.loss!r}")
