"""One Optuna search per candidate: TPE over the options that carry a range, validation NDCG@10
(the config's --metric) as the objective, median pruning on the per-epoch validation curve.

Every trial is one ordinary `recx train` run in ``<study>/runs/<candidate>/trial-NNN``; the
first trial of each search is the defaults, so a search never ends below them.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from recx.study.candidates import Candidate
from recx.study.plan import StudyPlan
from recx.study.storage import candidate_study, spent_seconds, states
from recx.trainer.space import SearchRange, suggest

POLL_S = 10  # how often a study waits for other workers' trials to end
STARTUP_TRIALS = 5  # random trials before TPE models the search, and before the pruner judges
WARMUP_EPOCHS = 5  # validations a trial always gets: the pruner first judges the one after them


def candidate_space(plan: StudyPlan, cand: Candidate) -> dict[str, SearchRange]:
    """The ranges declared on the config fields that apply to ``cand``, less the fixed options."""
    return {k: v for k, v in plan.config(cand, {}, "space").search_space().items() if k not in plan.fixed}


def default_params(plan: StudyPlan, cand: Candidate, space: dict[str, SearchRange]) -> dict[str, Any]:
    """The values the candidate trains with untuned (workspace and fixed options over the defaults)."""
    cfg = plan.config(cand, {}, "defaults")
    return {name: cfg.get(name) for name, rng in space.items() if rng.contains(cfg.get(name))}


def sampler_and_pruner(plan: StudyPlan, finished: int) -> tuple[Any, Any]:
    """TPE seeded by the study seed and how many trials exist, so a rerun asks the same questions;
    with constant liar, workers sharing a storage do not all try the same point."""
    import optuna

    startup = min(STARTUP_TRIALS, max(1, plan.trials // 3))
    sampler = optuna.samplers.TPESampler(seed=plan.seed + finished, n_startup_trials=startup, constant_liar=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=WARMUP_EPOCHS)
    return sampler, pruner


def search(plan: StudyPlan, storage: Any, cand: Candidate, identity: dict[str, Any], budget_s: float) -> None:
    """Run trials of ``cand`` until it has ``plan.trials`` finished ones (counting those running
    elsewhere) or its trials have trained for ``budget_s`` seconds (0: no limit)."""
    import optuna

    space = candidate_space(plan, cand)
    while True:
        study = candidate_study(storage, cand, identity)
        optuna.storages.fail_stale_trials(study)  # a dead trial is failed and queued again
        trials = study.get_trials(deepcopy=False)
        count = states(trials)
        finished = count.get("COMPLETE", 0) + count.get("PRUNED", 0)
        spent = spent_seconds(trials)
        if finished + count.get("RUNNING", 0) >= plan.trials or (budget_s and spent >= budget_s):
            return
        sampler, pruner = sampler_and_pruner(plan, len(trials))
        study = candidate_study(storage, cand, identity, sampler, pruner)
        if not trials:
            study.enqueue_trial(default_params(plan, cand, space), skip_if_exists=True)
        study.optimize(objective(plan, cand, space, study), n_trials=1)


def objective(plan: StudyPlan, cand: Candidate, space: dict[str, SearchRange], study: Any) -> Callable[[Any], float]:
    def run(trial: Any) -> float:
        import optuna

        from recx.trainer.engine import Diverged
        from recx.trainer.loop import fit

        params = suggest(trial, space)
        trials = study.get_trials(deepcopy=False)
        retried = retried_number(trials[trial.number])  # a trial whose process died: resume its run
        previous = trials[retried].user_attrs.get("run_dir") if retried is not None else None
        resume = previous is not None and (Path(previous) / "last.pt").is_file()
        name = Path(previous).name if resume else f"trial-{trial.number:03d}"
        cfg = plan.config(cand, params, name)
        metric = cfg.optim.metric
        run_dir = Path(cfg.run.runs_dir) / name
        if not resume and run_dir.exists():  # a trial killed before its first checkpoint: recx's own partial folder
            shutil.rmtree(run_dir)
        trial.set_user_attr("run_dir", str(run_dir))
        if resume:
            say(plan, f"{cand.key} trial {trial.number}: retries trial {retried}, whose process died; resuming {run_dir}")

        validations = [0]

        def prune(epoch: int, row: dict[str, Any]) -> None:
            validations[0] += 1
            value = float(row["valid"][metric])
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: valid {metric} {value:.4f}")

        started = time.perf_counter()
        try:
            result = fit(cfg, run_dir=run_dir, resume=resume, progress=False, listeners=[prune])
        except Diverged as e:
            raise optuna.TrialPruned(str(e)) from None
        except optuna.TrialPruned:
            say(plan, f"{cand.key} trial {trial.number}: pruned after {validations[0]} validations ({time.perf_counter() - started:.0f}s)")
            raise
        value = float(result.best_valid[metric])
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("train_seconds", result.train_seconds)
        say(plan, f"{cand.key} trial {trial.number}: valid {metric} {value:.4f} at epoch {result.best_epoch} "
                  f"({result.epochs_run} epochs, {time.perf_counter() - started:.0f}s) {params}")
        return value

    return run


def retried_number(trial: Any) -> int | None:
    """The number of the dead trial that ``trial`` (a FrozenTrial) retries, else None."""
    import optuna

    return optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def wait_for_others(plan: StudyPlan, storage: Any, cands: list[Candidate], identity: dict[str, Any]) -> bool:
    """Block until no trial of ``cands`` is running in another worker (dead ones are failed
    after the heartbeat grace period, and queued again); True if it had to wait."""
    import optuna

    waited = False
    while True:
        running = 0
        for cand in cands:
            study = candidate_study(storage, cand, identity)
            optuna.storages.fail_stale_trials(study)
            running += states(study.get_trials(deepcopy=False)).get("RUNNING", 0)
        if not running:
            return waited
        say(plan, f"waiting for {running} trial(s) running in other workers")
        waited = True
        time.sleep(POLL_S)


def say(plan: StudyPlan, line: str) -> None:
    if plan.progress:
        print(line, file=sys.stderr, flush=True)
