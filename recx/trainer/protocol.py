"""What a recommender model is to recx: the contract the training loop, evaluation, serving
and export rely on.  Every model family (the sequence models over an item tower, and Reo-LM)
implements :class:`RecModel`; recx/trainer/registry.py maps model names to their builders, and
nothing else tells models apart.

Shapes: B users per batch, L positions, D the vector width, N the catalog size (item 0 is
padding), U users to encode.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from recx.trainer.data import Batch
from recx.trainer.history import HistoryTerm
from recx.trainer.losses.base import ItemVectors


@runtime_checkable
class RecModel(Protocol):
    """A trainable, servable sequential recommender (an ``nn.Module``)."""

    causal: bool  # True: the state at a position sees only the past (export scripts it so)
    # the learned score of candidates in the user's history (recx/trainer/history.py): the loss
    # adds its prefix_scores, every ranking path its scores(histories); None: plain dot product
    history_term: HistoryTerm | None

    @property
    def tower(self) -> ItemVectors:
        """The item tower the loss scores candidates with."""
        ...

    def __call__(self, inputs: torch.Tensor, masked: torch.Tensor | None = None, items: ItemVectors | None = None) -> torch.Tensor:
        """inputs [B, L] item indices (0 = padding), masked [B, L] bool or None -> states [B, L, D]."""
        ...

    def training_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """The batch the loss sees (targets filled in; cloze masks for bidirectional models)."""
        ...

    def step_items(self) -> ItemVectors:
        """What a training step embeds inputs and candidates with (a per-step memo where the
        tower runs an encoder, so each distinct item is encoded once)."""
        ...

    def begin_epoch(self) -> None:
        """Called before each epoch's (or validation interval's) first step, on every rank."""
        ...

    def targets_per_step(self, batches: Any, mask_ratio: float) -> float:
        """Target positions per step over an epoch: the loss's reference scale."""
        ...

    def item_table(self) -> torch.Tensor:
        """[N+1, D] catalog vectors for scoring (row 0 = padding)."""
        ...

    def user_vectors(self, histories: list[np.ndarray], max_len: int, batch_size: int = 1024,
                     autocast: Callable[[], Any] | None = None, table: torch.Tensor | None = None) -> torch.Tensor:
        """[U, D] float32: each history's state after its last item, in the order given."""
        ...

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Parameters of pretrained encoders: AdamW gives them the encoder learning rate and
        weight decay (recx/trainer/optim.py)."""
        ...

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        """Model-specific throughput of the epoch that just ended (e.g. tokens/s); may be empty."""
        ...

    def sequence_encoder(self) -> nn.Module:
        """The module `recx export` scripts behind the frozen item table: item vectors
        [B, L, D] + mask [B, L] -> states; raises RecxError for models that have none."""
        ...

    def adapt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Another run's weights fitted to this model's shapes (``--warm-start``)."""
        ...
