"""The whole study, resumable: search every candidate, wait for other workers, replicate and test
each candidate's best trial, compare, write results.json, report.md and report.html.

Rerunning the same command continues: finished trials and replicas are reused, a trial or
replica that was interrupted resumes from its last checkpoint, and only the verdict is redone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from recx.artifacts import atomic_write_text
from recx.study.candidates import Candidate, StudyError, varying_parts
from recx.study.plan import StudyPlan
from recx.study.search import candidate_space, search, wait_for_others
from recx.study.storage import candidate_study, check_identity, open_storage, spent_seconds, states, trial_seconds
from recx.study.verdict import HEADLINE, Scored, compare, headline, replicate, score
from recx.trainer.checkpoint import read_metrics

RESULTS = "results.json"
FORMAT = 1
N_BOOT = 1000


def identity(plan: StudyPlan) -> dict[str, Any]:
    """What a study's trials depend on besides their own options: the dataset, the stores any
    candidate reads (by content) and the fixed options; also the dataset's name, for the report."""
    from recx.data.dataset import SequenceDataset
    from recx.featurize.store import store_digest

    cfgs = [plan.config(c, {}, "identity") for c in plan.candidates]
    stores = {m: p for cfg in cfgs for m, p in cfg.run.stores.items()}
    dataset = SequenceDataset(cfgs[0].run.dataset)
    return {"dataset_fingerprint": dataset.fingerprint, "stores": {m: store_digest(p) for m, p in sorted(stores.items())},
            "fixed": {k: plan.fixed[k] for k in sorted(plan.fixed)}, "dataset_name": dataset.name}


def check_candidates(plan: StudyPlan) -> None:
    """Every candidate can be built from the workspace (its stores exist), before any trial runs."""
    for cand in plan.candidates:
        cfg = plan.config(cand, {}, "check")
        missing = [p for p in cfg.tower_parts if p not in ("id", "topk", "e2e") and not cfg.run.stores.get(p)]
        if missing:
            raise StudyError(f"--towers {cand.tower}: the workspace has no {missing[0]} store; run `recx featurize` for it "
                             f"or leave {cand.tower} out of --towers")


def run_study(plan: StudyPlan) -> dict[str, Any] | None:
    """Run or continue ``plan``; returns results.json's content (None for a ``--worker``)."""
    if importlib.util.find_spec("optuna") is None:
        raise StudyError("recx study needs Optuna: pip install 'recx[study]' (or pip install optuna)")
    if not plan.candidates:
        raise StudyError("no candidate to study: give --towers, --losses and --models")
    check_candidates(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(plan.storage)
    ident = identity(plan)
    check_identity(storage, plan.storage, ident)
    share = 60.0 * plan.budget_minutes / len(plan.candidates) if plan.budget_minutes else 0.0
    started = time.time()
    while True:
        for cand in plan.candidates:
            search(plan, storage, cand, ident, share)
        if plan.worker:
            return None
        # a trial that was running elsewhere may have died and been queued again: search once more
        if not wait_for_others(plan, storage, plan.candidates, ident):
            break
    results = verdict(plan, storage, ident)
    results["call_seconds"] = time.time() - started
    from recx.study.report import write_reports

    atomic_write_text(plan.out / RESULTS, json.dumps(results, indent=1) + "\n")
    write_reports(results, plan.out)
    return results


def verdict(plan: StudyPlan, storage: Any, ident: dict[str, Any]) -> dict[str, Any]:
    """Each candidate's best trial replicated, tested and compared: results.json's content."""
    varying = varying_parts(plan.candidates)
    scored: list[Scored] = []
    searches: dict[str, dict[str, Any]] = {}
    for cand in plan.candidates:
        trials = candidate_study(storage, cand, ident).get_trials(deepcopy=False)
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        if not complete:
            raise StudyError(f"{cand.key}: no trial of its search finished (states {states(trials)}); raise --trials or --budget-minutes")
        best = max(complete, key=lambda t: (t.value, -t.number))
        best_run = Path(best.user_attrs["run_dir"])
        searches[cand.key] = search_summary(plan, cand, trials, best, best_run)
        scored.append(score(cand, cand.label(varying), replicate(plan, cand, best_run)))
    ranked = sorted(scored, key=lambda s: -float(s.per_user[HEADLINE].mean()))
    rows = compare(ranked, N_BOOT, plan.seed)
    return {
        "format": FORMAT,
        "dataset": ident["dataset_fingerprint"],
        "dataset_name": ident["dataset_name"],
        "settings": {"trials": plan.trials, "seeds": plan.seed_list(), "budget_minutes": plan.budget_minutes,
                     "fixed": ident["fixed"], "storage": plan.storage, "stores": ident["stores"]},
        "machine": machine(),
        "candidates": [{"key": s.cand.key, "label": s.label, "model": s.cand.model, "tower": s.cand.tower, "loss": s.cand.loss,
                        **searches[s.cand.key], **s.summary(N_BOOT, plan.seed)} for s in ranked],
        "pairs": [{k: v for k, v in r.items() if k != "all"} for r in rows],
        "verdict": headline(ranked, rows),
    }


def search_summary(plan: StudyPlan, cand: Candidate, trials: list[Any], best: Any, best_run: Path) -> dict[str, Any]:
    """A candidate's search: trials by state, seconds, the best trial and every trial's value."""
    metric = plan.config(cand, {}, "metric").optim.metric
    return {
        "space": {name: rng.describe() for name, rng in candidate_space(plan, cand).items()},
        "trials": states(trials),
        "search_seconds": spent_seconds(trials),
        "best_trial": {"number": best.number, "valid": best.value, "params": best.params, "run": os.path.relpath(best_run, plan.out),
                       "best_epoch": best.user_attrs.get("best_epoch"), "epochs_run": best.user_attrs.get("epochs_run")},
        "history": [{"number": t.number, "state": t.state.name, "value": t.value, "seconds": trial_seconds(t)}
                    for t in trials if t.state.name in ("COMPLETE", "PRUNED")],
        "curve": [r["valid"][metric] for r in read_metrics(best_run) if "valid" in r],
    }


def machine() -> dict[str, Any]:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}
