"""`recx pretrain`'s options (no torch import: the command line is built from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recx.errors import RecxError
from recx.options import DEFAULT_SEED, PRECISIONS
from recx.trainer.config import DEFAULT_LM, OPTIONS, REO_ITEM_TEXTS, SCHEDULES, option, option_specs

PRETRAIN_TUNINGS = ("full", "molora")


@dataclass
class PretrainConfig:
    """Every knob of `recx pretrain` (written into the checkpoint's config.json).  Options that
    `recx train` also has share its help text; their defaults are pre-training's own."""

    domains: list[str] = field(default_factory=list)
    image_stores: list[str] = field(default_factory=list)  # matched to domains by catalog fingerprint
    lm: str = option(DEFAULT_LM, OPTIONS["lm"].help)
    item_text: str = option("attributes", OPTIONS["item_text"].help, choices=REO_ITEM_TEXTS)
    attr_tokens: int = option(32, OPTIONS["attr_tokens"].help)
    item_tokens: int = option(0, OPTIONS["item_tokens"].help)
    user_tokens: int = option(256, "Token budget of a user's packed items, cut at item boundaries (newest kept).")
    user_items: int = option(9, OPTIONS["user_items"].help)
    max_len: int = option(50, "History window of a training row (the items a user reads: --user-items).")
    tuning: str = option("full", "Backbone tuning: full (every weight) | molora (frozen backbone and ROMA's mixture of LoRA experts, "
                         "the top blocks' experts routed by domain; fine-tune with --reo-tuning molora).", choices=PRETRAIN_TUNINGS)
    lora_rank: int = option(8, OPTIONS["lora_rank"].help)
    lora_alpha: float = option(16.0, OPTIONS["lora_alpha"].help)
    lora_experts: int = option(8, OPTIONS["lora_experts"].help)
    pooling: str = option("mean", OPTIONS["pooling"].help, choices=("mean", "cls"))
    temperature: float = option(0.05, "Cosine temperature of the in-batch and alignment losses.")
    alpha: float = option(1.0, OPTIONS["alpha"].help)
    mlm_ratio: float = option(0.15, "Share of the user sequence's text tokens masked (the user vector is read from the masked input).")
    mlm_weight: float = option(0.1, "Weight of the masked-token loss (0: no masking).")
    align_weight: float = option(0.0, "Weight of the item-image alignment loss (0: not computed).")
    epochs: int = option(1, "Epochs over the mixed domains.")
    steps_per_epoch: int = option(0, "Batches per epoch (0 = all).")
    batch_size: int = option(32, OPTIONS["batch_size"].help)
    lr: float = option(5e-5, "Backbone learning rate (--tuning molora: of its adapters).")
    head_lr: float = option(1e-3, "Learning rate of the new parameters (item positions, image projection, MLM head).")
    weight_decay: float = option(0.01, OPTIONS["weight_decay"].help)
    schedule: str = option("constant", OPTIONS["schedule"].help, choices=SCHEDULES)
    warmup_steps: int = option(0, OPTIONS["warmup_steps"].help)
    grad_clip: float = option(1.0, OPTIONS["grad_clip"].help)
    precision: str = option("auto", OPTIONS["precision"].help, choices=PRECISIONS)
    grad_checkpointing: bool = option(False, "Recompute activations in backward.")
    seed: int = option(DEFAULT_SEED, OPTIONS["seed"].help)
    device: str = option("auto", OPTIONS["device"].help)

    def validate(self) -> None:
        if not self.domains:
            raise RecxError("recx pretrain needs at least one --domains DIR")
        for name, spec in option_specs(PretrainConfig).items():
            if spec.choices and getattr(self, name) not in spec.choices:
                raise RecxError(f"{spec.flag} {getattr(self, name)!r}: expected one of {', '.join(spec.choices)}")
        if not 0.0 < self.mlm_ratio < 1.0:
            raise RecxError("--mlm-ratio must be in (0, 1)")
        for name in ("epochs", "batch_size", "max_len", "attr_tokens"):
            if getattr(self, name) < 1:
                raise RecxError(f"--{name.replace('_', '-')} must be >= 1")
        for name in ("item_tokens", "user_items", "mlm_weight", "align_weight"):
            if getattr(self, name) < 0:
                raise RecxError(f"--{name.replace('_', '-')} must be >= 0")
        if self.item_text == "text" and self.item_tokens < 1:
            raise RecxError("--item-text text needs --item-tokens N >= 1 (the whole text is cut to it)")
        if self.user_tokens < max(self.item_tokens, 1) + 3:
            raise RecxError(f"--user-tokens {self.user_tokens} must hold one item (--item-tokens {self.item_tokens} + 3)")
        if self.tuning == "molora":
            if self.lora_rank < 1 or self.lora_experts < 1:
                raise RecxError(f"--lora-rank {self.lora_rank} and --lora-experts {self.lora_experts} must be >= 1")
            if self.grad_checkpointing:
                raise RecxError("--tuning molora does not combine with --grad-checkpointing (the backward's recompute would not see the batch's domains)")
