"""The Optuna storage a study lives in, and what makes two studies the same study.

The default is a SQLite file in the study folder; ``--storage URL`` names any database Optuna
speaks to (PostgreSQL, MySQL), which several `recx study --worker` processes, on one machine or
many, share.  Each candidate is one Optuna study named by :attr:`Candidate.key`.

A trial whose process died (``kill -9``, a lost machine) stops sending heartbeats; after
``GRACE_S`` seconds the next trial to start marks it failed and queues it again with the same
parameters (Optuna's RetryHeartbeatStaleTrialCallback), and the retry resumes the dead trial's run from
its last checkpoint.  Failed trials do not count towards ``--trials``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from recx.study.candidates import Candidate, StudyError

HEARTBEAT_S = 15  # a running trial writes a heartbeat this often
GRACE_S = 60  # and is taken for dead when none came for this long
MAX_RETRY = 3  # a trial that dies this often stays failed
OPEN_TRIES = 5  # workers started together race to create the schema; the losers try again
ATTR = "recx"  # the study user attribute that holds its identity


def default_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'study.db'}"


def open_storage(url: str) -> Any:
    """An ``optuna.storages.RDBStorage`` with heartbeats, so dead trials are found and retried."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and their retry callback are marked experimental; they are what resume rests on
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # SQLite locks the file for each write; wait for another worker's write instead of failing
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY, inherit_intermediate_values=True)
    for attempt in range(OPEN_TRIES):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                              heartbeat_stale_trial_callback=retry)
        except Exception as e:  # sqlalchemy's errors for a bad URL, a missing driver or a refused connection
            # workers started together race to create the schema: the loser finds it made a moment later
            if attempt + 1 == OPEN_TRIES or "IntegrityError" not in type(e).__name__ + str(e):
                raise StudyError(f"--storage {url}: cannot open it ({type(e).__name__}: {str(e).splitlines()[0]})") from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def check_identity(storage: Any, url: str, identity: dict[str, Any]) -> None:
    """Refuse a storage that holds a recx study of other data, stores or fixed options.

    ``identity``: ``dataset_fingerprint``, ``stores`` (modality -> content digest) and ``fixed``
    (the options every trial shares)."""
    import optuna

    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        theirs = summary.user_attrs.get(ATTR)
        if not theirs:
            continue  # somebody else's study in a shared database
        where = f"--storage {url}: study {summary.study_name!r}"
        if theirs["dataset_fingerprint"] != identity["dataset_fingerprint"]:
            raise StudyError(f"{where} was run on another dataset (fingerprint {theirs['dataset_fingerprint'][:12]}, this one is "
                             f"{identity['dataset_fingerprint'][:12]}); give this study its own -o folder or --storage")
        for modality, digest in identity["stores"].items():
            if theirs["stores"].get(modality, digest) != digest:
                raise StudyError(f"{where} read another {modality} store (content {theirs['stores'][modality][:12]}, now {digest[:12]}); "
                                 "give this study its own -o folder or --storage")
        if theirs["fixed"] != identity["fixed"]:
            raise StudyError(f"{where} fixed other options ({theirs['fixed']}, now {identity['fixed']}); rerun with the same --set "
                             "values, or give this study its own -o folder or --storage")


def candidate_study(storage: Any, cand: Candidate, identity: dict[str, Any], sampler: Any = None, pruner: Any = None) -> Any:
    """The candidate's Optuna study (created on first use, with the identity recorded)."""
    import optuna

    study = optuna.create_study(storage=storage, study_name=cand.key, direction="maximize", load_if_exists=True,
                                sampler=sampler, pruner=pruner)
    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, {**identity, "candidate": cand.options()})
    return study


def trial_seconds(trial: Any) -> float:
    """How long a finished trial ran (0 for one that has not ended)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def spent_seconds(trials: list[Any]) -> float:
    """Training seconds a search has spent: its finished trials' durations.  A dead trial's own
    duration would count the time until it was found dead; its retry resumes its run and counts
    the rest, so the epochs it trained before dying go uncounted."""
    return sum(trial_seconds(t) for t in trials if t.state.name in ("COMPLETE", "PRUNED"))


def states(trials: list[Any]) -> dict[str, int]:
    """Trials by state name: ``{"COMPLETE": 12, "PRUNED": 5, ...}``."""
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out
