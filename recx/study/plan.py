"""What a study runs: its candidates, budgets, fixed options and where it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recx.options import DEFAULT_SEED
from recx.study.candidates import Candidate
from recx.trainer.config import TrainConfig


@dataclass
class StudyPlan:
    """One `recx study` command.

    trials: finished trials (complete or pruned) per candidate's search;
    budget_minutes: training minutes per study, summed over trials and workers and split evenly
        between candidates (0: no limit), so every candidate gets the same compute;
    seeds: runs of each candidate's best trial (the trial itself is the first seed);
    fixed: train options every trial shares (recx.toml [train] and ``--set``), flat names.
    """

    candidates: list[Candidate]
    out: Path
    storage: str
    workspace: dict[str, Any]  # the flat options of recx.toml (dataset, stores, runs, [train])
    fixed: dict[str, Any] = field(default_factory=dict)
    trials: int = 20
    seeds: int = 3
    budget_minutes: float = 0.0
    log: str = "none"
    seed: int = DEFAULT_SEED
    worker: bool = False
    progress: bool = True

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    def config(self, cand: Candidate, params: dict[str, Any], name: str, **run: Any) -> TrainConfig:
        """The train config of one trial or replica of ``cand``: workspace < fixed < candidate < params."""
        cfg = TrainConfig.resolve(self.workspace, self.fixed, cand.options(), params,
                                  {"runs_dir": str(self.runs / cand.key), "name": name, "log": self.log, "seed": self.seed, **run},
                                  source="--set")
        cfg.run.stores = cfg.stores_read()
        return cfg

    def seed_list(self) -> list[int]:
        """The seeds of each candidate's replicas: the study's seed (the best trial's own run), then 1, 2, ..."""
        return [self.seed, *[s for s in range(1, self.seeds + 1) if s != self.seed]][: self.seeds]
