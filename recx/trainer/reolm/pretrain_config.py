"""`recx pretrain`'s options (no torch import: the command line is built from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recx.errors import RecxError
from recx.options import DEFAULT_SEED, PRECISIONS
from recx.trainer.config import DEFAULT_LM, OPTIONS, SCHEDULES, option, option_specs


@dataclass
class PretrainConfig:
    """Every knob of `recx pretrain` (written into the checkpoint's config.json).  Options that
    `recx train` also has share its help text; their defaults are pre-training's own."""

    domains: list[str] = field(default_factory=list)
    image_stores: list[str] = field(default_factory=list)  # matched to domains by catalog fingerprint
    lm: str = option(DEFAULT_LM, OPTIONS["lm"].help)
    item_tokens: int = option(32, OPTIONS["item_tokens"].help)
    user_tokens: int = option(256, OPTIONS["user_tokens"].help)
    max_len: int = option(50, "Most history items packed.")
    pooling: str = option("mean", OPTIONS["pooling"].help, choices=("mean", "cls"))
    temperature: float = option(0.05, "Cosine temperature of the in-batch and alignment losses.")
    alpha: float = option(1.0, OPTIONS["alpha"].help)
    mlm_ratio: float = option(0.15, "Share of item-text tokens masked.")
    mlm_weight: float = option(1.0, "Weight of the masked-token loss.")
    align_weight: float = option(1.0, "Weight of the item-image alignment loss.")
    epochs: int = option(1, "Epochs over the mixed domains.")
    steps_per_epoch: int = option(0, "Batches per epoch (0 = all).")
    batch_size: int = option(32, OPTIONS["batch_size"].help)
    lr: float = option(5e-5, "Backbone learning rate.")
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
        for name in ("epochs", "batch_size", "item_tokens", "max_len"):
            if getattr(self, name) < 1:
                raise RecxError(f"--{name.replace('_', '-')} must be >= 1")
        if self.user_tokens < self.item_tokens + 3:
            raise RecxError(f"--user-tokens {self.user_tokens} must hold one item (--item-tokens {self.item_tokens} + 3)")
