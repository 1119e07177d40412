"""Search ranges of the tunable options, declared on their config fields (``option(..., tune=...)``).

`recx study` tunes every option whose field carries a range and which applies to the candidate
(the option's own ``applies``; ``TrainConfig.search_space()``): a candidate's search space is
read from the config, never from a second table, so a new tunable option is one keyword on its field.

A range asks an Optuna trial for a value through the trial's ``suggest_*`` methods; this module
does not import Optuna (any object with those methods serves, e.g. a test double).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Trial(Protocol):
    """The part of ``optuna.Trial`` a range uses."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class FloatRange:
    """A float in [low, high]: log-uniform with ``log``, else uniform (on a grid with ``step``)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Trial, name: str) -> float:
        value = trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)
        return round(value, 12) if self.step else value  # a grid point, not 0.30000000000000004

    def contains(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        return self.step is None or abs((value - self.low) / self.step - round((value - self.low) / self.step)) < 1e-9

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else f" step {self.step:g}" if self.step else "")


@dataclass(frozen=True)
class Choice:
    """One of a few values (sizes, switches, or values that include 0 where a log range cannot)."""

    values: tuple[Any, ...]

    def suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def contains(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return " | ".join(str(v) for v in self.values)


SearchRange = FloatRange | Choice


def suggest(trial: Trial, space: dict[str, SearchRange]) -> dict[str, Any]:
    """One value per option of ``space``, asked of ``trial`` (flat option names -> values)."""
    return {name: rng.suggest(trial, name) for name, rng in space.items()}
