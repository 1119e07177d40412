"""The sequential recommenders (SASRec, GRU4Rec, BERT4Rec): an item tower feeding a sequence
encoder, one :class:`~recx.trainer.protocol.RecModel` family (recx/trainer/registry.py builds it)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError
from recx.trainer.config import TrainConfig
from recx.trainer.data import Batch, causal_targets, left_pad
from recx.trainer.encoder_towers import StepMemo
from recx.trainer.features import StoreLoader, load_store_features
from recx.trainer.history import HistoryTerm, build_history_term
from recx.trainer.losses.base import ItemVectors
from recx.trainer.registry import sequence_encoder_class
from recx.trainer.towers import FeatureTower, FusionTower, IdTower, ItemTower


class SequentialRecommender(nn.Module):
    """Scores = <state, item vector> (+ the history term for the user's own items, when the
    model has one); the same tower embeds inputs and candidates (tied)."""

    def __init__(self, tower: ItemTower, encoder: nn.Module, history_term: HistoryTerm | None = None):
        super().__init__()
        self.tower = tower
        self.encoder = encoder
        self.history_term = history_term
        self.causal = bool(encoder.causal)
        assert history_term is None or self.causal, "a history term needs a causal encoder (position t's history is the row up to t)"

    def forward(self, inputs: torch.Tensor, masked: torch.Tensor | None = None, items=None, last_only: bool = False) -> torch.Tensor:
        """inputs [B, L] item indices (0 = padding) -> states [B, L, D] ([B, 1, D]: the last
        position's alone, when ``last_only``).

        masked [B, L] bool (bidirectional models): positions whose item is hidden behind the
        encoder's mask vector.  items: the ItemVectors to embed inputs with (default the tower;
        a per-step memo for expensive towers).
        """
        vectors = (items or self.tower)(inputs)
        if masked is not None:
            vectors = torch.where(masked.unsqueeze(-1), self.encoder.mask_vector.to(vectors.dtype), vectors)
        return self.encoder(vectors, inputs > 0, last_only)

    def training_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """The batch the loss sees: seq2seq from real inputs only for causal models, a cloze batch for BERT4Rec."""
        if not self.causal:
            return self.encoder.mask_batch(batch, generator)
        return batch._replace(targets=causal_targets(batch))

    def step_items(self) -> ItemVectors:
        """The tower, or a per-step memo of it when it runs an encoder (each item encoded once)."""
        return StepMemo(self.tower) if self.tower.expensive else self.tower

    def begin_epoch(self) -> None:
        """Nothing is cached across steps."""

    def targets_per_step(self, batches, mask_ratio: float) -> float:
        """Target positions per step over an epoch (summed over ranks): the loss's reference scale."""
        # a cloze batch predicts ~mask_ratio of its items; the reference only sets the loss's overall scale
        return batches.targets_per_batch() * (1.0 if self.causal else mask_ratio)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return self.tower.pretrained_parameters()

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        return {}

    def item_table(self) -> torch.Tensor:
        """[N+1, D] catalog vectors for scoring."""
        return self.tower.table()

    def sequence_encoder(self) -> nn.Module:
        """The module that maps item vectors [B, L, D] to states (what `recx export` scripts
        behind the frozen item table)."""
        return self.encoder

    def adapt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Another run's weights fitted to this model's shapes (`--warm-start`); unchanged here:
        weights that differ in shape stay as built."""
        return state

    @torch.no_grad()
    def user_vectors(self, histories: list[np.ndarray], max_len: int, batch_size: int = 1024, autocast=None,
                     table: torch.Tensor | None = None) -> torch.Tensor:
        """The state after each history's last item: [U, D] float32, in the order given.

        Users are sorted by history length and each batch is trimmed to its longest history,
        so short histories (most of them) cost what they hold, not max_len.  Exact for every
        encoder here, since none lets left padding change a real position's state.
        ``table`` [N+1, D], the finished item table: history items are its rows, so a tuned or
        end-to-end tower runs once per catalog item (in ``item_table``) instead of once per
        history position.  None runs the tower at every position.
        """
        device = next(self.parameters()).device
        items = None if table is None else (lambda idx: table[idx])
        width = max_len if self.causal else max_len - 1  # a bidirectional model reads a mask position after the history
        padded = torch.from_numpy(left_pad(histories, width))
        if not self.causal:
            padded = torch.cat([padded, torch.ones(len(padded), 1, dtype=padded.dtype)], dim=1)
        lengths = (padded > 0).sum(1)
        order = torch.argsort(lengths, stable=True)
        out = torch.zeros(len(histories), self.tower.dim, device=device)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            longest = max(1, int(lengths[idx].max()))
            chunk = padded[idx, padded.shape[1] - longest :].to(device)
            masked = None
            if not self.causal:
                masked = torch.zeros_like(chunk, dtype=torch.bool)
                masked[:, -1] = True
            with autocast() if autocast else torch.autocast(device.type, enabled=False):
                out[idx.to(device)] = self(chunk, masked, items, last_only=True)[:, -1].float()
        return out


def build_sequential(cfg: TrainConfig, dataset: SequenceDataset, load_store: StoreLoader = load_store_features) -> SequentialRecommender:
    """The registry's builder for sasrec, gru4rec and bert4rec."""
    history = build_history_term(cfg.history_mode, dataset.num_items, cfg.model.max_len)
    return SequentialRecommender(build_tower(cfg, dataset, load_store), build_encoder(cfg), history)


def build_encoder(cfg: TrainConfig) -> nn.Module:
    """The sequence encoder ``cfg.model.name`` names (recx/trainer/registry.py SEQUENCE_ENCODERS)."""
    return sequence_encoder_class(cfg.model.name).from_config(cfg.model)


def build_tower(cfg: TrainConfig, dataset: SequenceDataset, load_store: StoreLoader = load_store_features) -> ItemTower:
    t, hidden = cfg.tower, cfg.model.hidden
    towers: list[ItemTower] = []
    for part in cfg.tower_parts:
        if part == "id":
            towers.append(IdTower(dataset.num_items, hidden))
            continue
        if part in ("topk", "e2e"):
            towers.append(build_encoder_tower(part, cfg, dataset))
            continue
        path = cfg.run.stores.get(part)
        if not path:
            raise RecxError(
                f"item tower {part!r} needs a {part} store: run `recx featurize --model <encoder>` "
                f"(e.g. minilm for text) or pass --store {part}=PATH"
            )
        features, present = load_store(path, dataset, part)
        towers.append(FeatureTower(features, present, hidden, t.adapter, whitened=t.whiten))
    return towers[0] if len(towers) == 1 else FusionTower(towers, t.fusion)


def build_encoder_tower(kind: str, cfg: TrainConfig, dataset: SequenceDataset) -> ItemTower:
    from recx.trainer.encoder_towers import EndToEndTower, TopBlocksTower, load_cached_trunk

    t, stores = cfg.tower, cfg.run.stores
    if kind == "topk":
        path = stores.get("topk") or stores.get("text") or stores.get("image")
        if not path:
            raise RecxError("--item-tower topk needs a store made with `recx featurize --cache-top-k K`: pass --store topk=PATH")
        top, hidden, mask, present = load_cached_trunk(path, dataset)
        return TopBlocksTower(top, hidden, mask, present, cfg.model.hidden, t.adapter)
    from recx.featurize.registry import load_encoder

    encoder = load_encoder(t.encoder)
    raw = dataset.texts if encoder.modality == "text" else dataset.image_paths
    return EndToEndTower(encoder, raw, cfg.model.hidden, t.tune_blocks, t.adapter, grad_checkpointing=t.grad_checkpointing)
