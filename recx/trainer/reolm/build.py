"""Build a ReoLM for one dataset from a TrainConfig (what `recx train --model reo-lm` and
`recx eval` on such a run call)."""

from __future__ import annotations

import sys

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError
from recx.trainer.config import TrainConfig
from recx.trainer.features import StoreLoader, load_store_features
from recx.trainer.reolm.backbone import load_backbone, load_tokenizer, locate_backbone, tokenizer_hash
from recx.trainer.reolm.lora import apply_lora
from recx.trainer.reolm.model import ReoLM
from recx.trainer.reolm.packing import Specials, user_token_budget
from recx.trainer.reolm.tokens import item_tokens


def image_store_path(cfg: TrainConfig) -> str | None:
    """The image store the image token reads, or None for text only."""
    if cfg.reolm.image == "none":
        return None
    path = cfg.run.stores.get("image")
    if cfg.reolm.image == "store" and not path:
        raise RecxError("--reo-image store needs --store image=PATH")
    return path or None


def build_reolm_model(cfg: TrainConfig, dataset: SequenceDataset, load_store: StoreLoader = load_store_features) -> ReoLM:
    """The registry's builder for reo-lm."""
    return build_reolm(cfg, dataset, load_store=load_store)


def build_reolm(cfg: TrainConfig, dataset: SequenceDataset, load_init: bool = True,
                load_store: StoreLoader = load_store_features) -> ReoLM:
    """The model for ``dataset``; with ``cfg.init`` (and ``load_init``) the pretrained weights
    of a `recx pretrain` checkpoint, refused if its backbone or tokenizer differs."""
    from recx.trainer.reolm.checkpoint import backbone_signature, check_compatible, load_shared_weights

    r, init = cfg.reolm, cfg.reolm.init
    folder = locate_backbone(r.lm)
    tokenizer = load_tokenizer(folder)
    tok_hash = tokenizer_hash(tokenizer)
    backbone = load_backbone(folder)
    if init:
        check_compatible(init, r.lm, backbone_signature(backbone), tok_hash)
    tokens = item_tokens(dataset, tokenizer, tok_hash, r.item_tokens, mode=r.item_text, attr_budget=r.attr_tokens)
    features = present = None
    store = image_store_path(cfg)
    if store:
        features, present = load_store(store, dataset, "image")
    max_items = r.user_items or cfg.model.max_len
    # RoBERTa-type position tables start at padding_idx + 1 = 2
    positions = int(getattr(backbone.config, "max_position_embeddings", 512)) - (2 if backbone.config.model_type in ("roberta", "xlm-roberta") else 0)
    model = ReoLM(
        backbone,
        tokens,
        Specials.of(tokenizer),
        user_budget=user_token_budget(tokens, max_items, store is not None, positions, r.user_tokens),
        max_items=max_items,
        image_features=features,
        image_present=present,
        pooling=r.pooling,
        normalize=cfg.loss.temperature > 0,
        tuning="full" if r.tuning in ("lora", "molora") else r.tuning,
        tune_blocks=cfg.tower.tune_blocks,
        grad_checkpointing=cfg.tower.grad_checkpointing,
        attribute_types=len(tokens.attributes) if tokens.types is not None else 0,
        catalog_negatives=cfg.loss.name in ("full_ce", "sampled_softmax"),
        frozen_items=r.stage == 2,
        item_ids=r.item_ids,
        item_id_scale=cfg.loss.temperature if cfg.loss.temperature > 0 else 1.0,
        history_ids=r.history_ids,
        history_id_dropout=r.history_id_dropout,
    )
    if init and load_init:
        skipped = load_shared_weights(model, init)
        if skipped:
            print(f"reo-lm: {init}: kept fresh (not in the checkpoint or another shape): {', '.join(skipped)}", file=sys.stderr)
    if r.tuning == "lora":  # after --init, so checkpoints keep the backbone's plain weight names
        apply_lora(model.backbone, r.lora_rank, r.lora_alpha)
    elif r.tuning == "molora":  # hooks keep the backbone's weight names; a molora --init brings its adapters
        from recx.trainer.reolm.molora import apply_molora, load_adapters

        apply_molora(model.backbone, r.lora_rank, r.lora_alpha, r.lora_experts)
        misfit = load_adapters(model, init) if init and load_init else []
        if misfit:
            print(f"reo-lm: {init}: adapters of another --lora-rank / --lora-experts kept fresh: {', '.join(misfit)}", file=sys.stderr)
    return model
