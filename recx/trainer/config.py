"""Training configuration: one nested config whose field metadata is the single source of every option.

    TrainConfig
      model   the sequence model: name (sasrec | gru4rec | bert4rec | reo-lm) and its sizes
      tower   the item tower: kind (id, text, id+text, ...), adapter, fusion, tuned encoder
      loss    the loss: name and its knobs
      optim   optimiser, schedule, epochs, early stopping
      reolm   the Reo-LM (a language model as both towers)
      run     data, seed, device, precision, where the run is written

Each field carries its option's help, choices and the models / losses / towers it applies to
(:class:`Applies`).  From that one declaration come the `recx train` options (trainer/cli.py),
the validation, and the refusal of an option that does not apply to the chosen model or loss.
Every field has one flat option name (its ``recx train`` flag without the dashes), so a config
round-trips both ways: ``TrainConfig.from_options(hidden=32)`` / ``cfg.options()`` (flat, as
the command line and recx.toml's [train] spell them) and ``from_dict`` / ``to_dict`` (nested,
as config.json stores them).  Options resolve as defaults < recx.toml [train] < --config FILE
< command line.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from recx.errors import RecxError
from recx.options import DEFAULT_SEED, PRECISION_HELP, PRECISIONS
from recx.trainer.space import Choice, FloatRange, SearchRange

SEQUENCE_MODELS = ("sasrec", "gru4rec", "bert4rec")
LM_MODELS = ("reo-lm",)  # a language model as both towers (recx/trainer/reolm/)
MODELS = SEQUENCE_MODELS + LM_MODELS
LOSSES = ("bce", "sampled_softmax", "full_ce", "debiased_ce")
MODALITY_TOWERS = ("text", "image", "clip")
ENCODER_TOWERS = ("topk", "e2e")  # run (part of) a pretrained encoder inside the step
ADAPTERS = ("linear", "mlp", "moe")
FUSIONS = ("add", "concat", "gated")
SCHEDULES = ("constant", "cosine", "linear")
REO_IMAGES = ("auto", "none", "store")
REO_TUNINGS = ("full", "topk", "lora", "molora")
REO_ITEM_TEXTS = ("attributes", "text")  # recx/trainer/reolm/tokens.py ITEM_TEXTS
REO_STAGES = (1, 2)
REO_LOSSES = ("debiased_ce", "full_ce", "sampled_softmax")  # bce scores no catalog-wide softmax
HISTORY_TERMS = ("off", "bias", "recency", "item")  # recx/trainer/history.py
HISTORY_MODELS = ("sasrec", "gru4rec")  # causal: position t's history is the row's items up to t
HISTORY_LOSSES = ("debiased_ce", "full_ce")  # losses whose candidates include the history items
HISTORY_GRADIENTS = ("term", "all")  # recx/trainer/losses/linear_softmax.py TermScores
TRACKERS = ("none", "tensorboard", "mlflow")  # recx/trainer/tracking.py
DEFAULT_LM = "all-MiniLM-L6-v2"  # Reo-LM's backbone unless --lm names another
# options a resumed run takes from the command line; every other option is the run's own
RESUMABLE = ("epochs", "patience", "device")


class ConfigError(RecxError):
    """An option has an invalid value or does not apply; the message names it."""


@dataclass(frozen=True)
class Applies:
    """Where an option has an effect: a predicate over the config and the phrase that names it."""

    test: Callable[["TrainConfig"], bool]
    phrase: str  # completes "applies to ...", e.g. "--loss sampled_softmax"

    def __call__(self, cfg: "TrainConfig") -> bool:
        return self.test(cfg)


def to_models(*names: str) -> Applies:
    return Applies(lambda c: c.model.name in names, "--model " + " | ".join(names))


def to_losses(*names: str) -> Applies:
    return Applies(lambda c: c.loss.name in names, "--loss " + " | ".join(names))


def _tower_has(*parts: str) -> Callable[["TrainConfig"], bool]:
    return lambda c: c.model.name not in LM_MODELS and any(p in c.tower_parts for p in parts)


SEQUENCE = to_models(*SEQUENCE_MODELS)
TRANSFORMERS = to_models("sasrec", "bert4rec")
REOLM = to_models(*LM_MODELS)
FEATURE_TOWERS = Applies(_tower_has("text", "image", "clip", "topk", "e2e"), "towers with a text, image, clip, topk or e2e part")
STORE_TOWERS = Applies(_tower_has("text", "image", "clip"), "towers with a text, image or clip part")
FUSED_TOWERS = Applies(lambda c: c.model.name not in LM_MODELS and len(c.tower_parts) > 1, "fused towers (e.g. --item-tower id+text)")
TUNED_ENCODER = Applies(lambda c: _tower_has("topk", "e2e")(c) or c.model.name in LM_MODELS,
                        "--item-tower topk | e2e and --model reo-lm")
TUNED_BLOCKS = Applies(lambda c: _tower_has("e2e")(c) or (c.model.name in LM_MODELS and c.reolm.tuning == "topk"),
                       "--item-tower e2e and --model reo-lm --reo-tuning topk")
E2E = Applies(_tower_has("e2e"), "--item-tower e2e")
GRAD_CHECKPOINTING = Applies(lambda c: _tower_has("e2e")(c) or c.model.name in LM_MODELS, "--item-tower e2e and --model reo-lm")
LORA = Applies(lambda c: c.model.name in LM_MODELS and c.reolm.tuning in ("lora", "molora"), "--model reo-lm --reo-tuning lora | molora")
MOLORA = Applies(lambda c: c.model.name in LM_MODELS and c.reolm.tuning == "molora", "--model reo-lm --reo-tuning molora")
HISTORY = Applies(lambda c: c.model.name in HISTORY_MODELS and c.loss.name in HISTORY_LOSSES,
                  f"--model {' | '.join(HISTORY_MODELS)} with --loss {' | '.join(HISTORY_LOSSES)}")
REO_STAGE2 = Applies(lambda c: c.model.name in LM_MODELS and c.reolm.stage == 2, "--model reo-lm --reo-stage 2")
HISTORY_IDS = Applies(lambda c: REO_STAGE2(c) and c.reolm.history_ids, "--model reo-lm --reo-stage 2 --reo-history-ids")
ATTRIBUTE_TEXT = Applies(lambda c: c.model.name in LM_MODELS and c.reolm.item_text == "attributes", "--model reo-lm --item-text attributes")


def option(default: Any, help: str, *, choices: tuple[str, ...] = (), applies: Applies | None = None,
           flag: str = "", path: bool = False, cli: str = "", tune: SearchRange | None = None) -> Any:
    """A config field and everything its command-line option needs.

    flag: the option's name when it is not the field's (``--item-tower`` for tower.kind);
    path: a file or folder, made absolute on the command line and stored run-relative;
    cli: the command-line spelling when it differs from the option name (``--store`` for stores);
    tune: the range `recx study` searches where the option applies (recx/trainer/space.py).
    """
    meta = {"help": help, "choices": choices, "applies": applies, "flag": flag, "path": path, "cli": cli, "tune": tune}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    name: str = option("sasrec", "Sequence encoder: sasrec | gru4rec | bert4rec | reo-lm (a language model as both towers).", choices=MODELS, flag="model")
    hidden: int = option(64, "Hidden size.", applies=SEQUENCE, tune=Choice((32, 64, 128)))
    layers: int = option(2, "Transformer blocks (GRU layers for gru4rec).", applies=SEQUENCE)
    heads: int = option(2, "Attention heads.", applies=TRANSFORMERS)
    dropout: float = option(0.5, "Dropout.", applies=SEQUENCE, tune=FloatRange(0.1, 0.6, step=0.1))
    max_len: int = option(50, "Positions per sequence (reo-lm: the history window of a training row; --user-items is what a user reads).")
    mask_ratio: float = option(0.2, "bert4rec: share of items masked per training row.", applies=to_models("bert4rec"))
    # recency by default: on the four datasets of docs/repeats.md it beat off where repeats are rare and matched it where not
    history_term: str = option("recency", "Repeat-aware scoring: a learned score for candidates in the user's history (its past items "
                               "stay candidates in the loss): off | bias (one global bias) | recency (per recency and count bucket) "
                               "| item (recency, count and a per-item propensity).", choices=HISTORY_TERMS, applies=HISTORY)


@dataclass
class TowerConfig:
    kind: str = option("id", "Item tower: id | text | image | clip | topk | e2e | fusions like id+text.", flag="item_tower", applies=SEQUENCE)
    adapter: str = option("linear", "Store -> hidden adapter: linear | mlp | moe.", choices=ADAPTERS, applies=FEATURE_TOWERS,
                          tune=Choice(("linear", "mlp")))
    whiten: bool = option(False, "PCA-whiten frozen store features before the adapter.", applies=STORE_TOWERS, tune=Choice((False, True)))
    fusion: str = option("add", "How a '+' tower combines parts: add | concat | gated.", choices=FUSIONS, applies=FUSED_TOWERS)
    encoder: str = option("", "e2e tower: encoder name or local folder (`recx models`).", applies=E2E)
    tune_blocks: int = option(1, "e2e tower / reo-lm --reo-tuning topk: top encoder blocks unfrozen.", applies=TUNED_BLOCKS)
    encoder_lr: float = option(1e-4, "topk/e2e tower, reo-lm: learning rate of the pretrained encoder (reo-lm lora: of its adapters).",
                               applies=TUNED_ENCODER, tune=FloatRange(1e-5, 1e-3, log=True))
    encoder_weight_decay: float = option(0.01, "topk/e2e tower, reo-lm: weight decay of the pretrained encoder.", applies=TUNED_ENCODER)
    grad_checkpointing: bool = option(False, "e2e tower, reo-lm: recompute activations in backward.", applies=GRAD_CHECKPOINTING)


@dataclass
class LossConfig:
    name: str = option("debiased_ce", "bce | sampled_softmax | full_ce | debiased_ce.", choices=LOSSES, flag="loss")
    alpha: float = option(1.0, "Popularity power of the logQ correction.", applies=to_losses("debiased_ce", "sampled_softmax"))
    temperature: float = option(0.0, ">0: cosine similarity / temperature; 0: raw inner product.", applies=Applies(
        lambda c: c.model.name in LM_MODELS or c.loss.name != "bce", "--loss full_ce | debiased_ce | sampled_softmax and --model reo-lm"),
        tune=Choice((0.0, 0.05, 0.1, 0.2)))
    mask_scope: str = option("sequence", "debiased_ce masks the user's whole sequence or only the past: sequence | past.",
                             choices=("sequence", "past"), applies=to_losses("debiased_ce"))
    num_negatives: int = option(256, "sampled_softmax: negatives per batch.", applies=to_losses("sampled_softmax"))
    history_gradient: str = option("term", "With a history term: term = the encoder trains on the term-free loss and the term on "
                                   "a second softmax over the encoder's detached scores plus the term | all = one softmax in which "
                                   "the user's past items are candidates, so the encoder learns from them as negatives too.",
                                   choices=HISTORY_GRADIENTS, applies=HISTORY)
    negative_sampler: str = option("uniform", "sampled_softmax negatives: uniform | popularity.", choices=("uniform", "popularity"),
                                   applies=to_losses("sampled_softmax"))


@dataclass
class OptimConfig:
    epochs: int = option(200, "Maximum epochs.")
    batch_size: int = option(256, "Users per batch.")
    lr: float = option(1e-3, "Learning rate (AdamW).", tune=FloatRange(1e-4, 1e-2, log=True))
    weight_decay: float = option(0.0, "AdamW weight decay (not on biases/norms).", tune=Choice((0.0, 1e-4, 1e-3, 1e-2, 1e-1)))
    schedule: str = option("constant", "Learning-rate schedule after warmup: constant | cosine | linear (decay to 0 at the last epoch).", choices=SCHEDULES)
    warmup_steps: int = option(0, "Linear warmup steps.")
    grad_clip: float = option(1.0, "Gradient norm clip (0 = off).")
    # positions: every target position of the epoch weighs the same; batch: every batch's mean
    # weighs the same, which with length-bucketed batches over-weights short sequences
    loss_weighting: str = option("positions", "positions: each target position weighs the same over the epoch; batch: each batch's "
                                 "mean weighs the same (over-weights short sequences, which share batches).", choices=("positions", "batch"))
    patience: int = option(10, "Early stopping: validations without improvement.")
    valid_per_epoch: int = option(1, "Validations per epoch: each ends a checkpoint, --patience counts them (ROMA: 2, every half epoch).")
    prefix_rows: int = option(0, "Training rows: 0 = one per user (every position a target for sequence models, one random prefix for "
                              "reo-lm); N = every prefix of each user's last N training items is its own row with one target.")
    metric: str = option("ndcg@10", "Validation metric for early stopping and the best checkpoint.")
    eval_batch_size: int = option(1024, "Users per validation batch.")
    valid_users: int = option(0, "Validate on a fixed random sample of this many users (0 = all): at a million users a full-catalog "
                              "validation costs more than an epoch (docs/scale.md).")


@dataclass
class ReoLMConfig:
    lm: str = option(DEFAULT_LM, "reo-lm: backbone (registry name, cached hub id or local folder).", applies=REOLM)
    init: str = option("", "reo-lm: start from a `recx pretrain` checkpoint dir (refused if its backbone or tokenizer differs).",
                       applies=REOLM, path=True)
    image: str = option("auto", "reo-lm image token: auto (when --store image=PATH) | none (text only) | store.", choices=REO_IMAGES,
                        flag="reo_image", applies=REOLM)
    tuning: str = option("full", "reo-lm: full fine-tuning | topk (top --tune-blocks blocks) | lora (peft adapters; their lr is --encoder-lr) "
                         "| molora (ROMA's mixture of adapter experts: averaged in the lower blocks, gated in the top ones).",
                         choices=REO_TUNINGS, flag="reo_tuning", applies=REOLM)
    lora_rank: int = option(8, "reo-lm --reo-tuning lora | molora: adapter rank (molora: per expert).", applies=LORA)
    lora_alpha: float = option(16.0, "reo-lm --reo-tuning lora | molora: adapter scale alpha (update scaled by alpha / rank).", applies=LORA)
    lora_experts: int = option(8, "reo-lm --reo-tuning molora: experts per adapted block.", applies=MOLORA)
    pooling: str = option("mean", "reo-lm vector: mean | cls pooling.", choices=("mean", "cls"), applies=REOLM)
    item_text: str = option("attributes", "reo-lm item text: attributes (key: value per attribute, each its own budget and token type) "
                            "| text (the joined text cut as a whole, recx before December 2026).", choices=REO_ITEM_TEXTS, applies=REOLM)
    attr_tokens: int = option(32, "reo-lm --item-text attributes: tokens per attribute, key and value (ROMA: 32).", applies=ATTRIBUTE_TEXT)
    item_tokens: int = option(0, "reo-lm: most text tokens per item (0 = no cap besides --attr-tokens; --item-text text needs one).", applies=REOLM)
    user_items: int = option(9, "reo-lm: most history items a user reads, newest first (ROMA: 9); 0 = --max-len.", applies=REOLM)
    user_tokens: int = option(0, "reo-lm: token budget of a user's packed items, cut at item boundaries (0 = what --user-items "
                              "items take, up to the backbone's positions).", applies=REOLM)
    stage: int = option(1, "reo-lm: 1 trains both towers; 2 freezes the item table (encoded once at the start, e.g. from a "
                        "stage-1 run given as --warm-start) and trains the user side on a softmax over it.", flag="reo_stage", applies=REOLM)
    item_ids: bool = option(False, "reo-lm --reo-stage 2: add a learned vector per item (zero at the start, times --temperature: an ID adds "
                            "an unscaled dot product to a score) to the frozen text table, so the item side learns what the text does not "
                            "say (a text + ID fusion; ROMA has none).",
                            flag="reo_item_ids", applies=REO_STAGE2)
    history_ids: bool = option(False, "reo-lm --reo-stage 2: add a learned vector per item (zero at the start) to the input embedding "
                               "of that item's tokens in a user's sequence, so the user side reads which items a history holds, not "
                               "only their text (ROMA has none).", flag="reo_history_ids", applies=REO_STAGE2)
    history_id_dropout: float = option(0.0, "reo-lm --reo-history-ids: dropout on the history ID vectors in training, as SASRec "
                                       "drops its input embeddings (--dropout).", flag="reo_history_id_dropout", applies=HISTORY_IDS)


@dataclass
class RunConfig:
    dataset: str = option("data", "Dataset directory. [default: recx.toml [workspace] dataset]", path=True)
    stores: dict[str, str] = option({}, "MODALITY=PATH of an H5 store (repeatable). [default: recx.toml [stores]]", cli="--store")
    warm_start: str = option("", "Start from this finished run's best weights where names and shapes match "
                             "(e.g. a frozen id+text run before --item-tower id+topk).", path=True)
    seed: int = option(DEFAULT_SEED, "Random seed.")
    device: str = option("auto", "auto | cpu | cuda | cuda:N.")
    precision: str = option("auto", PRECISION_HELP, choices=PRECISIONS)
    name: str = option("", "Run name (folder under the runs dir). [default: time-model-tower-loss]")
    runs_dir: str = option("runs", "Folder of the runs. [default: recx.toml's runs]", path=True)
    log: str = option("none", "Experiment tracking: none | tensorboard (event files in <run>/tensorboard) | mlflow (params, "
                      "per-epoch metrics and the curve); needs the track extra.", choices=TRACKERS)
    log_uri: str = option("", "--log mlflow: tracking URI. [default: $MLFLOW_TRACKING_URI, else mlruns/ beside the runs folder]",
                          applies=Applies(lambda c: c.run.log == "mlflow", "--log mlflow"))


SECTIONS: dict[str, type] = {"model": ModelConfig, "tower": TowerConfig, "loss": LossConfig, "optim": OptimConfig,
                             "reolm": ReoLMConfig, "run": RunConfig}


@dataclass(frozen=True)
class OptionSpec:
    """One option: its flat name, where it lives in the nested config and its metadata."""

    name: str  # flat name: "item_tower"; the flag is "--item-tower"
    section: str  # "tower"
    attr: str  # "kind"
    default: Any
    type: Any
    help: str
    choices: tuple[str, ...]
    applies: Applies | None
    path: bool
    cli: str
    tune: SearchRange | None = None  # the range `recx study` searches (recx/trainer/space.py)

    @property
    def flag(self) -> str:
        return self.cli or "--" + self.name.replace("_", "-")


def option_specs(cls: type, section: str = "") -> dict[str, OptionSpec]:
    """The options a dataclass declares with :func:`option` (one section of TrainConfig, or
    PretrainConfig), by flat name."""
    out: dict[str, OptionSpec] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        m = f.metadata
        if "help" not in m:
            continue
        default = {} if f.default is dataclasses.MISSING else f.default
        out[m["flag"] or f.name] = OptionSpec(m["flag"] or f.name, section, f.name, default, hints[f.name], m["help"],
                                              m["choices"], m["applies"], m["path"], m["cli"], m.get("tune"))
    return out


def _specs() -> dict[str, OptionSpec]:
    out: dict[str, OptionSpec] = {}
    for section, cls in SECTIONS.items():
        for name, spec in option_specs(cls, section).items():
            assert name not in out, f"option {name} declared twice"
            out[name] = spec
    return out


OPTIONS: dict[str, OptionSpec] = _specs()


@dataclass
class TrainConfig:
    """Every knob of `recx train` in six sections; the defaults reproduce a RecBole-like SASRec."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tower: TowerConfig = field(default_factory=TowerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    reolm: ReoLMConfig = field(default_factory=ReoLMConfig)
    run: RunConfig = field(default_factory=RunConfig)

    FORMAT: ClassVar[int] = 5  # config.json's run_format: 5 = with the history term (runconfig.py migrates 1-4)

    # -- flat options <-> nested config ----------------------------------------------------
    @classmethod
    def from_options(cls, **options: Any) -> "TrainConfig":
        """A validated config from flat option names (``hidden=32``, ``item_tower="id+text"``),
        as the command line and recx.toml's [train] table spell them."""
        return cls.resolve(options)

    def options(self) -> dict[str, Any]:
        """The flat option names and values (``from_options(**cfg.options()) == cfg``)."""
        return {name: _copy(getattr(getattr(self, s.section), s.attr)) for name, s in OPTIONS.items()}

    def get(self, name: str) -> Any:
        spec = _spec(name, "option")
        return getattr(getattr(self, spec.section), spec.attr)

    def set(self, name: str, value: Any) -> None:
        spec = _spec(name, "option")
        setattr(getattr(self, spec.section), spec.attr, value)

    # -- nested (config.json) ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        """The nested form (``to_dict``); unknown sections or fields are refused by name."""
        cfg = cls()
        for section, fields in values.items():
            if section not in SECTIONS or not isinstance(fields, dict):
                raise ConfigError(f"{source}: unknown section {section!r} (expected {', '.join(SECTIONS)})")
            known = {f.name for f in dataclasses.fields(SECTIONS[section])}
            unknown = sorted(set(fields) - known)
            if unknown:
                raise ConfigError(f"{source}: unknown option(s) {', '.join(f'{section}.{u}' for u in unknown)}")
            setattr(cfg, section, SECTIONS[section](**{**dataclasses.asdict(getattr(cfg, section)), **fields}))
        cfg.validate()
        return cfg

    @classmethod
    def resolve(cls, *layers: dict[str, Any] | None, source: str = "config") -> "TrainConfig":
        """Merge flat option layers, later ones winning; None values never override; ``stores``
        merge per modality."""
        cfg = cls()
        for layer in layers:
            for name, value in (layer or {}).items():
                if value is None:
                    continue
                spec = _spec(name, source)
                if name == "stores":
                    value = {**cfg.run.stores, **value}
                setattr(getattr(cfg, spec.section), spec.attr, _copy(value))
        cfg.validate()
        return cfg

    @staticmethod
    def read_toml(path: str | Path) -> dict[str, Any]:
        """Flat options from a run config file; a ``[train]`` table is used if present, and its
        section tables (``[train.model]``) are flattened."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML ({e})") from None
        return flatten_options(dict(data.get("train", data)), str(p))

    # -- what the options mean -------------------------------------------------------------
    @property
    def tower_parts(self) -> list[str]:
        """``"id+text"`` -> ``["id", "text"]``."""
        return [p.strip() for p in self.tower.kind.split("+") if p.strip()]

    @property
    def history_mode(self) -> str:
        """The history term the model carries: ``--history-term`` where it applies, else off."""
        return self.model.history_term if HISTORY(self) else "off"

    @property
    def is_lm(self) -> bool:
        """A language model as both towers (its own item and user encoders)."""
        return self.model.name in LM_MODELS

    def stores_read(self) -> dict[str, str]:
        """The entries of ``stores`` this model reads (a run records and checks only these)."""
        stores = self.run.stores
        if self.is_lm:  # the LM reads only an image store, for its image token
            wanted = {"image"}
        else:
            wanted = set(self.tower_parts) - {"id", "e2e", "topk"}
            if "topk" in self.tower_parts:  # the cached trunk: the topk store, else the text or image one
                wanted |= {next((m for m in ("topk", "text", "image") if stores.get(m)), "topk")}
        return {m: p for m, p in stores.items() if m in wanted}

    def search_space(self) -> dict[str, SearchRange]:
        """The tunable options (those declared with ``tune=``) that apply to this model, tower and
        loss, by flat option name: what `recx study` searches."""
        return {name: spec.tune for name, spec in OPTIONS.items() if spec.tune is not None and (spec.applies is None or spec.applies(self))}

    def inapplicable(self, given: set[str] | list[str]) -> list[str]:
        """One line for each of the ``given`` options that has no effect with this model / loss / tower."""
        lines = []
        for name in sorted(given):
            spec = OPTIONS.get(name)
            if spec is not None and spec.applies is not None and not spec.applies(self):
                lines.append(f"{spec.flag} applies to {spec.applies.phrase}, not to --model {self.model.name}"
                             + ("" if self.is_lm else f" --loss {self.loss.name} --item-tower {self.tower.kind}"))
        return lines

    def validate(self) -> None:
        for name, spec in OPTIONS.items():
            if spec.choices and self.get(name) not in spec.choices:
                raise ConfigError(f"{spec.flag} {self.get(name)!r}: expected one of {', '.join(spec.choices)}")
        m, t, o = self.model, self.tower, self.optim
        parts = self.tower_parts
        bad = [p for p in parts if p != "id" and p not in MODALITY_TOWERS + ENCODER_TOWERS]
        if not parts or bad or len(set(parts)) != len(parts):
            raise ConfigError(f"--item-tower {t.kind!r}: expected id, text, image, clip, topk, e2e or a '+' fusion of them (e.g. id+text)")
        if "e2e" in parts and not t.encoder and not self.is_lm:
            raise ConfigError("--item-tower e2e needs --encoder NAME_OR_PATH (see `recx models`)")
        if t.tune_blocks < 0:
            raise ConfigError("--tune-blocks must be >= 0")
        if m.hidden % m.heads:
            raise ConfigError(f"--hidden {m.hidden} must be divisible by --heads {m.heads}")
        for name in ("hidden", "layers", "heads", "max_len", "epochs", "batch_size", "num_negatives", "eval_batch_size"):
            if self.get(name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0.0 <= m.dropout < 1.0:
            raise ConfigError("--dropout must be in [0, 1)")
        if not 0.0 < m.mask_ratio < 1.0:
            raise ConfigError("--mask-ratio must be in (0, 1)")
        if m.name == "bert4rec" and self.loss.mask_scope == "past":
            raise ConfigError("--mask-scope past needs a causal model (sasrec, gru4rec)")
        if self.is_lm:
            self._validate_reolm()
        if o.valid_per_epoch < 1 or o.prefix_rows < 0 or o.valid_users < 0:
            raise ConfigError("--valid-per-epoch must be >= 1, --prefix-rows and --valid-users >= 0")
        if o.lr <= 0:
            raise ConfigError("--lr must be > 0")
        if o.metric.split("@")[0] not in ("ndcg", "hr", "mrr"):
            raise ConfigError(f"--metric {o.metric!r}: expected ndcg@K, hr@K or mrr")

    def _validate_reolm(self) -> None:
        r = self.reolm
        if self.loss.name not in REO_LOSSES:
            raise ConfigError(f"--model reo-lm trains with --loss {' | '.join(REO_LOSSES)}, not {self.loss.name!r}")
        if r.tuning in ("lora", "molora") and r.lora_rank < 1:
            raise ConfigError(f"--lora-rank {r.lora_rank}: must be >= 1")
        if r.tuning == "molora" and r.lora_experts < 1:
            raise ConfigError(f"--lora-experts {r.lora_experts}: must be >= 1")
        if r.image == "store" and not self.run.stores.get("image"):
            raise ConfigError("--reo-image store needs --store image=PATH (an image store of this dataset)")
        if r.stage not in REO_STAGES:
            raise ConfigError(f"--reo-stage {r.stage}: expected 1 or 2")
        if not 0.0 <= r.history_id_dropout < 1.0:
            raise ConfigError(f"--reo-history-id-dropout {r.history_id_dropout}: must be in [0, 1)")
        if r.item_text == "text" and r.item_tokens < 1:
            raise ConfigError("--item-text text needs --item-tokens N >= 1 (the whole text is cut to it)")
        for name in ("attr_tokens", "item_tokens", "user_items", "user_tokens"):
            if self.get(name) < 0 or (name == "attr_tokens" and self.get(name) < 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be >= {1 if name == 'attr_tokens' else 0}")
        if r.user_tokens and r.item_tokens and r.user_tokens < r.item_tokens + 3:
            raise ConfigError(f"--user-tokens {r.user_tokens} must hold one item (--item-tokens {r.item_tokens} + 3)")


def flatten_options(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Flat options from a table that may hold section tables (``model = {hidden = 32}``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            by_attr = {s.attr: n for n, s in OPTIONS.items() if s.section == key}
            for attr, v in value.items():
                if attr not in by_attr:
                    raise ConfigError(f"{source}: unknown option {key}.{attr}")
                flat[by_attr[attr]] = v
        else:
            _spec(key, source)
            flat[key] = value
    return flat


def _spec(name: str, source: str) -> OptionSpec:
    spec = OPTIONS.get(name)
    if spec is None:
        from recx.options import RENAMED_FLAGS

        renamed = RENAMED_FLAGS.get("--" + name.replace("_", "-"))
        hint = f" ({name} was renamed: use {renamed})" if renamed else ""
        raise ConfigError(f"{source}: unknown option(s) {name}{hint}")
    return spec


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value
