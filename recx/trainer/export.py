"""What `recx eval` needs from a run: user vectors, the item table, targets and histories."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recx.data.dataset import SequenceDataset
from recx.trainer.checkpoint import BEST


@dataclass
class RunEmbeddings:
    """Everything needed to rank the full catalog for one split of a trained run.

    user_vectors [U, D] float32, item_table [N+1, D] float32 (row 0 padding; score = inner
    product), targets [U] int64 in 1..N, histories: each user's items before the target.
    """

    user_vectors: np.ndarray
    item_table: np.ndarray
    targets: np.ndarray
    histories: list[np.ndarray]
    dataset: SequenceDataset
    config: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def export_embeddings(run_dir: str | Path, split: str = "test", checkpoint: str = BEST) -> RunEmbeddings:
    from recx.trainer.loop import load_trained

    model, cfg, dataset = load_trained(run_dir, checkpoint)
    histories, targets = dataset.split(split)
    users = model.user_vectors(histories, cfg.max_len, cfg.eval_batch_size)
    table = model.item_table().float()
    config = {**cfg.to_dict(), "name": cfg.name or Path(run_dir).name}
    return RunEmbeddings(users.cpu().numpy(), table.cpu().numpy(), targets, histories, dataset, config)
