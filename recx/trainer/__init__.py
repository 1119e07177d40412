"""Sequence models, item towers, losses and the training loop (`recx train`)."""

from recx.trainer.config import TrainConfig
from recx.trainer.loop import FitResult, fit, load_trained

__all__ = ["TrainConfig", "FitResult", "fit", "load_trained"]
