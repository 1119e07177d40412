"""Training losses, one per module; :func:`build_loss` picks one from a TrainConfig."""

from __future__ import annotations

from typing import Callable

import torch

from recx.trainer.config import LOSSES, TrainConfig
from recx.trainer.losses.base import SequenceLoss
from recx.trainer.losses.bce import BinaryCrossEntropy
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
from recx.trainer.losses.full_ce import FullCrossEntropy
from recx.trainer.losses.sampled_softmax import SampledSoftmax

__all__ = ["SequenceLoss", "BinaryCrossEntropy", "DebiasedCrossEntropy", "FullCrossEntropy", "SampledSoftmax", "build_loss"]


# name -> how to build it from the [loss] section and the run's context; one line per loss
LOSS_BUILDERS: dict[str, Callable[..., SequenceLoss]] = {
    "bce": lambda c, counts, item_mask_fn, gather, seed: BinaryCrossEntropy(item_mask_fn, seed=seed),
    "full_ce": lambda c, counts, item_mask_fn, gather, seed: FullCrossEntropy(c.temperature, c.history_gradient),
    "debiased_ce": lambda c, counts, item_mask_fn, gather, seed: DebiasedCrossEntropy(counts, c.alpha, c.temperature, c.mask_scope, gather,
                                                                                      c.history_gradient),
    "sampled_softmax": lambda c, counts, item_mask_fn, gather, seed: SampledSoftmax(
        counts, c.num_negatives, c.negative_sampler, c.alpha, c.temperature, seed, gather),
}
assert tuple(sorted(LOSS_BUILDERS)) == tuple(sorted(LOSSES)), "recx/trainer/config.py's LOSSES and LOSS_BUILDERS must agree"


def build_loss(
    cfg: TrainConfig,
    item_counts: torch.Tensor,
    item_mask_fn: Callable[[torch.Tensor], torch.Tensor],
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    rank: int = 0,
) -> SequenceLoss:
    """The loss named by ``cfg.loss.name``.

    Args:
        item_counts: [N+1] training interactions per item (popularity for logQ terms).
        item_mask_fn: rows [B] -> [B, N+1] bool of each row's user items (bce negatives).
        gather: all-gather across ranks for the in-batch losses (None in one process).
        rank: this process's rank; samplers draw independent streams per rank.
    """
    seed = cfg.run.seed + 7919 * rank
    return LOSS_BUILDERS[cfg.loss.name](cfg.loss, item_counts, item_mask_fn, gather, seed)
