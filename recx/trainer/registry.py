"""Model names -> builders: the one place that knows which model families exist.

A builder takes ``(cfg, dataset, load_store)`` and returns a :class:`~recx.trainer.protocol.RecModel`.
Builders are named as ``"module:function"`` and imported on first use, so a family's heavy
dependencies (Reo-LM's transformers) load only when that family is built.  Adding a model is
one module with its builder, one line here, and its tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from recx.trainer.config import MODELS, ConfigError
from recx.trainer.features import StoreLoader, load_store_features

if TYPE_CHECKING:
    from recx.data.dataset import SequenceDataset
    from recx.trainer.config import TrainConfig
    from recx.trainer.protocol import RecModel

MODEL_BUILDERS: dict[str, str] = {
    "sasrec": "recx.trainer.model:build_sequential",
    "gru4rec": "recx.trainer.model:build_sequential",
    "bert4rec": "recx.trainer.model:build_sequential",
    "reo-lm": "recx.trainer.reolm.build:build_reolm_model",
}
# the sequence encoders build_sequential puts over an item tower: classes with from_config(ModelConfig)
SEQUENCE_ENCODERS: dict[str, str] = {
    "sasrec": "recx.trainer.sequence.sasrec:SASRec",
    "gru4rec": "recx.trainer.sequence.gru4rec:GRU4Rec",
    "bert4rec": "recx.trainer.sequence.bert4rec:BERT4Rec",
}
assert tuple(MODEL_BUILDERS) == MODELS, "recx/trainer/config.py's MODELS and the registry must list the same models"


def _load(table: dict[str, str], name: str) -> Any:
    target = table.get(name)
    if target is None:
        raise ConfigError(f"--model {name!r}: expected one of {', '.join(table)}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def model_builder(name: str) -> Callable[..., "RecModel"]:
    return _load(MODEL_BUILDERS, name)


def sequence_encoder_class(name: str) -> Any:
    return _load(SEQUENCE_ENCODERS, name)


def build_model(cfg: "TrainConfig", dataset: "SequenceDataset", load_store: StoreLoader = load_store_features) -> "RecModel":
    """The model ``cfg`` names, built for ``dataset`` (weights freshly initialised)."""
    return model_builder(cfg.model.name)(cfg, dataset, load_store)
