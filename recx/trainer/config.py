"""Training configuration: one dataclass, resolved from defaults < recx.toml < --config < CLI.

The fully resolved config is written as ``config.json`` in every run directory, and
``TrainConfig.from_dict(json.load(...))`` rebuilds it exactly (``get_config``/``from_config``
round trip, as RecTools does), so a run can be repeated or resumed from its folder alone.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from recx.errors import RecxError

SEQUENCE_MODELS = ("sasrec", "gru4rec", "bert4rec")
LOSSES = ("bce", "sampled_softmax", "full_ce", "debiased_ce")
MODALITY_TOWERS = ("text", "image", "clip")
ENCODER_TOWERS = ("topk", "e2e")  # run (part of) a pretrained encoder inside the step
ADAPTERS = ("linear", "mlp", "moe")
FUSIONS = ("add", "concat", "gated")
SCHEDULES = ("constant", "cosine")
LM_MODELS = ("reo-lm",)  # a language model as both towers (recx/trainer/reolm/)
REO_IMAGES = ("auto", "none", "store")
REO_TUNINGS = ("full", "topk", "lora")


class ConfigError(RecxError):
    """An option has an invalid value; the message names it."""


@dataclass
class TrainConfig:
    """Every knob of `recx train`; the defaults reproduce a RecBole-like SASRec."""

    # data
    dataset: str = "data"
    stores: dict[str, str] = field(default_factory=dict)  # modality -> H5 store path
    # model
    model: str = "sasrec"
    item_tower: str = "id"  # id | text | image | clip | id+text | text+image | ...
    adapter: str = "linear"
    whiten: bool = False  # PCA-whiten frozen store features before the adapter
    fusion: str = "add"
    encoder: str = ""  # e2e: registry name or local folder of the encoder to tune
    tune_blocks: int = 1  # e2e: top blocks unfrozen (topk: set by the store's --cache-top-k)
    encoder_lr: float = 1e-4  # e2e / topk: learning rate of the encoder blocks
    encoder_weight_decay: float = 0.01
    grad_checkpointing: bool = False
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.5
    max_len: int = 50
    mask_ratio: float = 0.2  # bert4rec: share of items hidden per training row
    warm_start: str = ""  # a finished run whose best weights seed this one where names and shapes match
    # reo-lm
    lm: str = "all-MiniLM-L6-v2"  # backbone: registry name, cached hub id or local folder
    init: str = ""  # a `recx pretrain` checkpoint dir to start from
    reo_image: str = "auto"  # auto: image token when --store image=PATH is given | none | store
    reo_tuning: str = "full"  # full | topk (the top --tune-blocks blocks) | lora (peft adapters, backbone frozen)
    lora_rank: int = 8  # reo-lm --reo-tuning lora: rank r of every block linear's update
    lora_alpha: float = 16.0  # its scale is alpha / r
    reo_pooling: str = "mean"  # mean | cls
    item_tokens: int = 32  # text tokens kept per item
    user_tokens: int = 256  # tokens of a packed user sequence (items newest first)
    # loss
    loss: str = "debiased_ce"
    alpha: float = 1.0  # popularity power of the logQ correction (debiased_ce, sampled_softmax)
    temperature: float = 0.0  # > 0: cosine similarity / temperature; 0: raw inner product
    mask_scope: str = "sequence"  # debiased_ce: mask the user's whole sequence or only the past
    num_negatives: int = 256  # sampled_softmax
    negative_sampler: str = "uniform"  # sampled_softmax: uniform | popularity
    # optimisation
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip: float = 1.0
    # positions: every target position of the epoch weighs the same; batch: every batch's mean
    # weighs the same, which with length-bucketed batches over-weights short sequences
    loss_weighting: str = "positions"
    amp: str = "auto"  # auto | bf16 | fp16 | off
    patience: int = 10
    metric: str = "ndcg@10"
    eval_batch_size: int = 1024
    # run
    seed: int = 42
    device: str = "auto"
    name: str = ""
    runs_dir: str = "runs"

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    @classmethod
    def from_options(cls, **options: Any) -> "TrainConfig":
        """A config from flat option names (``hidden=32``, ``item_tower="id+text"``), as the
        command line and recx.toml's [train] table spell them."""
        return cls.from_dict(options)

    @classmethod
    def resolve(cls, *layers: dict[str, Any] | None) -> "TrainConfig":
        """Merge option layers, later ones winning; None values never override."""
        merged: dict[str, Any] = {}
        for layer in layers:
            for k, v in (layer or {}).items():
                if v is None:
                    continue
                if k == "stores" and isinstance(v, dict):
                    merged["stores"] = {**merged.get("stores", {}), **v}
                else:
                    merged[k] = v
        return cls.from_dict(merged)

    @staticmethod
    def read_toml(path: str | Path) -> dict[str, Any]:
        """Options from a run config file; a ``[train]`` table is used if present."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML ({e})") from None
        return dict(data.get("train", data))

    # -- checks ----------------------------------------------------------------------------
    @property
    def tower_parts(self) -> list[str]:
        """``"id+text"`` -> ``["id", "text"]``."""
        return [p.strip() for p in self.item_tower.split("+") if p.strip()]

    def stores_read(self) -> dict[str, str]:
        """The entries of ``stores`` this model reads (a run records and checks only these)."""
        if self.model in LM_MODELS:  # the LM reads only an image store, for its image token
            wanted = {"image"}
        else:
            wanted = set(self.tower_parts) - {"id", "e2e", "topk"}
            if "topk" in self.tower_parts:  # the cached trunk: the topk store, else the text or image one
                wanted |= {next((m for m in ("topk", "text", "image") if self.stores.get(m)), "topk")}
        return {m: p for m, p in self.stores.items() if m in wanted}

    def validate(self) -> None:
        def one_of(name: str, allowed: tuple[str, ...]) -> None:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")

        one_of("model", SEQUENCE_MODELS + LM_MODELS)
        one_of("loss", LOSSES)
        one_of("adapter", ADAPTERS)
        one_of("fusion", FUSIONS)
        one_of("schedule", SCHEDULES)
        one_of("amp", ("auto", "bf16", "fp16", "off"))
        one_of("mask_scope", ("sequence", "past"))
        one_of("loss_weighting", ("positions", "batch"))
        one_of("negative_sampler", ("uniform", "popularity"))
        parts = self.tower_parts
        bad = [p for p in parts if p != "id" and p not in MODALITY_TOWERS + ENCODER_TOWERS]
        if not parts or bad or len(set(parts)) != len(parts):
            raise ConfigError(f"--item-tower {self.item_tower!r}: expected id, text, image, clip, topk, e2e or a '+' fusion of them (e.g. id+text)")
        if "e2e" in parts and not self.encoder:
            raise ConfigError("--item-tower e2e needs --encoder NAME_OR_PATH (see `recx models`)")
        if self.tune_blocks < 0:
            raise ConfigError("--tune-blocks must be >= 0")
        if self.hidden % self.heads:
            raise ConfigError(f"--hidden {self.hidden} must be divisible by --heads {self.heads}")
        for name in ("hidden", "layers", "heads", "max_len", "epochs", "batch_size", "num_negatives", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("--dropout must be in [0, 1)")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError("--mask-ratio must be in (0, 1)")
        if self.model == "bert4rec" and self.mask_scope == "past":
            raise ConfigError("--mask-scope past needs a causal model (sasrec, gru4rec)")
        if self.model in LM_MODELS:
            self.validate_reolm()
        if self.lr <= 0:
            raise ConfigError("--lr must be > 0")
        if self.metric.split("@")[0] not in ("ndcg", "hr", "mrr"):
            raise ConfigError(f"--metric {self.metric!r}: expected ndcg@K, hr@K or mrr")

    def validate_reolm(self) -> None:
        for name, allowed in (("reo_image", REO_IMAGES), ("reo_tuning", REO_TUNINGS), ("reo_pooling", ("mean", "cls"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")
        if self.loss != "debiased_ce":
            raise ConfigError(f"--model reo-lm trains with --loss debiased_ce (the in-batch candidates are encoded by the LM), not {self.loss!r}")
        if self.reo_tuning == "lora" and self.lora_rank < 1:
            raise ConfigError(f"--lora-rank {self.lora_rank}: must be >= 1")
        if self.reo_image == "store" and not self.stores.get("image"):
            raise ConfigError("--reo-image store needs --store image=PATH (an image store of this dataset)")
        if self.item_tokens < 1 or self.user_tokens < self.item_tokens + 3:
            raise ConfigError(f"--user-tokens {self.user_tokens} must hold one item (--item-tokens {self.item_tokens} + 3)")
