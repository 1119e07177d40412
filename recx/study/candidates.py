"""The candidates a study compares: every combination of an item tower, a loss and a model."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from recx.errors import RecxError
from recx.trainer.config import MODALITY_TOWERS


class StudyError(RecxError):
    """A study cannot start or go on; the message names the file or option and the fault."""


@dataclass(frozen=True)
class Candidate:
    model: str
    tower: str
    loss: str

    @property
    def key(self) -> str:
        """The candidate's Optuna study name and folder name: ``sasrec-id+text-debiased_ce``."""
        return f"{self.model}-{self.tower}-{self.loss}"

    def options(self) -> dict[str, str]:
        """The flat train options that make this candidate."""
        return {"model": self.model, "item_tower": self.tower, "loss": self.loss}

    def label(self, varying: tuple[str, ...]) -> str:
        """The candidate by what differs between the study's candidates (``id+text``, ``id+text bce``)."""
        return " ".join(getattr(self, part) for part in varying) or self.tower


def default_towers(stores: dict[str, str]) -> list[str]:
    """Every tower the workspace's stores allow: the ID table, each modality alone, each fused
    with the ID table, and (with two or more modalities) the ID table fused with all of them."""
    modalities = [m for m in MODALITY_TOWERS if stores.get(m)]
    towers = ["id", *modalities, *[f"id+{m}" for m in modalities]]
    if len(modalities) > 1:
        towers.append("+".join(["id", *modalities]))
    return towers


def parse_list(value: str | None, what: str, allowed: tuple[str, ...] | None = None) -> list[str] | None:
    """``"id,text, id+text"`` -> ``["id", "text", "id+text"]``; None when not given."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise StudyError(f"--{what} {value!r}: give a comma-separated list")
    bad = [v for v in items if allowed is not None and v not in allowed]
    if bad:
        raise StudyError(f"--{what} {', '.join(bad)}: expected {' | '.join(allowed or ())}")
    if len(set(items)) != len(items):
        raise StudyError(f"--{what} {value!r} names one entry twice")
    return items


def candidates(towers: list[str], losses: list[str], models: list[str]) -> list[Candidate]:
    return [Candidate(m, t, loss) for m, t, loss in itertools.product(models, towers, losses)]


def varying_parts(cands: list[Candidate]) -> tuple[str, ...]:
    """Which of tower, loss, model differ between candidates (the parts their labels show)."""
    return tuple(p for p in ("tower", "loss", "model") if len({getattr(c, p) for c in cands}) > 1)

