"""The sequential recommender: an item tower feeding a sequence encoder, built from a config."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError
from recx.trainer.config import TrainConfig
from recx.trainer.data import Batch, causal_targets, left_pad
from recx.trainer.features import StoreLoader, load_store_features
from recx.trainer.sequence.bert4rec import BERT4Rec
from recx.trainer.sequence.gru4rec import GRU4Rec
from recx.trainer.sequence.sasrec import SASRec
from recx.trainer.towers import FeatureTower, FusionTower, IdTower, ItemTower


class SequentialRecommender(nn.Module):
    """Scores = <state, item vector>; the same tower embeds inputs and candidates (tied)."""

    def __init__(self, tower: ItemTower, encoder: nn.Module):
        super().__init__()
        self.tower = tower
        self.encoder = encoder

    @property
    def causal(self) -> bool:
        return bool(getattr(self.encoder, "causal", True))

    def forward(self, inputs: torch.Tensor, masked: torch.Tensor | None = None, items=None) -> torch.Tensor:
        """inputs [B, L] item indices (0 = padding) -> states [B, L, D].

        masked [B, L] bool (bidirectional models): positions whose item is hidden behind the
        encoder's mask vector.  items: the ItemVectors to embed inputs with (default the tower;
        a per-step memo for expensive towers).
        """
        vectors = (items or self.tower)(inputs)
        if masked is not None:
            vectors = torch.where(masked.unsqueeze(-1), self.encoder.mask_vector.to(vectors.dtype), vectors)
        return self.encoder(vectors, inputs > 0)

    def training_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """The batch the loss sees: seq2seq from real inputs only for causal models, a cloze batch for BERT4Rec."""
        if not self.causal:
            return self.encoder.mask_batch(batch, generator)
        return batch._replace(targets=causal_targets(batch))

    def targets_per_step(self, batches, cfg: TrainConfig) -> float:
        """Target positions per step over an epoch (summed over ranks): the loss's reference scale."""
        # a cloze batch predicts ~mask_ratio of its items; the reference only sets the loss's overall scale
        return batches.targets_per_batch() * (1.0 if self.causal else cfg.mask_ratio)

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
                out[idx.to(device)] = self(chunk, masked, items)[:, -1].float()
        return out


def build_tower(cfg: TrainConfig, dataset: SequenceDataset, load_store: StoreLoader = load_store_features) -> ItemTower:
    towers: list[ItemTower] = []
    for part in cfg.tower_parts:
        if part == "id":
            towers.append(IdTower(dataset.num_items, cfg.hidden))
            continue
        if part in ("topk", "e2e"):
            towers.append(build_encoder_tower(part, cfg, dataset))
            continue
        path = cfg.stores.get(part)
        if not path:
            raise RecxError(
                f"item tower {part!r} needs a {part} store: run `recx featurize --model <encoder>` "
                f"(e.g. minilm for text) or pass --store {part}=PATH"
            )
        features, present = load_store(path, dataset, part)
        towers.append(FeatureTower(features, present, cfg.hidden, cfg.adapter, whitened=cfg.whiten))
    return towers[0] if len(towers) == 1 else FusionTower(towers, cfg.fusion)


def build_encoder_tower(kind: str, cfg: TrainConfig, dataset: SequenceDataset) -> ItemTower:
    from recx.trainer.encoder_towers import EndToEndTower, TopBlocksTower, load_cached_trunk

    if kind == "topk":
        path = cfg.stores.get("topk") or cfg.stores.get("text") or cfg.stores.get("image")
        if not path:
            raise RecxError("--item-tower topk needs a store made with `recx featurize --cache-top-k K`: pass --store topk=PATH")
        top, hidden, mask, present = load_cached_trunk(path, dataset)
        return TopBlocksTower(top, hidden, mask, present, cfg.hidden, cfg.adapter)
    from recx.featurize.registry import load_encoder

    encoder = load_encoder(cfg.encoder)
    raw = dataset.texts if encoder.modality == "text" else dataset.image_paths
    return EndToEndTower(encoder, raw, cfg.hidden, cfg.tune_blocks, cfg.adapter, grad_checkpointing=cfg.grad_checkpointing)


def encoder_parameters(model: nn.Module) -> set[int]:
    """ids of the pretrained-encoder parameters (their own learning rate and weight decay)."""
    from recx.trainer.encoder_towers import EndToEndTower, TopBlocksTower

    out: set[int] = set()
    for m in model.modules():
        if isinstance(m, EndToEndTower):
            out |= {id(p) for p in m.encoder.parameters()}
        elif isinstance(m, TopBlocksTower):
            out |= {id(p) for p in m.top.parameters()}
        elif hasattr(m, "pretrained_parameters"):  # reo-lm: the LM backbone
            out |= {id(p) for p in m.pretrained_parameters()}
    return out


def build_encoder(cfg: TrainConfig) -> nn.Module:
    if cfg.model == "sasrec":
        return SASRec(cfg.hidden, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len)
    if cfg.model == "gru4rec":
        return GRU4Rec(cfg.hidden, cfg.layers, cfg.dropout)
    if cfg.model == "bert4rec":
        return BERT4Rec(cfg.hidden, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len, cfg.mask_ratio)
    raise RecxError(f"--model {cfg.model!r}: expected sasrec, gru4rec or bert4rec")


def build_model(cfg: TrainConfig, dataset: SequenceDataset, load_store: StoreLoader = load_store_features) -> SequentialRecommender:
    if cfg.model == "reo-lm":  # a language model as both towers: its own family, same loop interface
        from recx.trainer.reolm.build import build_reolm

        return build_reolm(cfg, dataset)  # type: ignore[return-value]
    return SequentialRecommender(build_tower(cfg, dataset, load_store), build_encoder(cfg))
