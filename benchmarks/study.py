"""The IDvs.MoRec study: ID vs modality item towers, BCE vs debiased CE, frozen vs tuned blocks.

Every cell of the tables is one `recx train` command (printed in docs/results.md) run in a
per-dataset workspace, evaluated with `recx eval` under both history conventions.  Each row is
tuned on the validation split only, over the same search space for every row (``GRID``); the
test split is read once, for the trial with the best validation NDCG@10.

    .venv/bin/python benchmarks/study.py run --dataset amazon-scientific   # one dataset's table
    .venv/bin/python benchmarks/study.py run                               # all four
    .venv/bin/python benchmarks/study.py run --only ROW... --seeds 1 2     # seed replicas of chosen trials
    .venv/bin/python benchmarks/study.py ensemble                          # ensembles of the trained trials
    .venv/bin/python benchmarks/study.py report                            # docs/results.md + plots

Finished trials are reused and interrupted ones resumed (`recx train --resume`), so the driver
can be stopped and rerun at any point.  Results: <work>/<dataset>/study.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_WORK = Path("/tmp/recx-study")
# every run's study.json is also kept here (small; trials' metrics, commands and test results), so
# the report can be regenerated after the work folder is gone
KEPT = REPO / "docs" / "study"

# The search space every row gets (same budget for ID and MoRec rows): dropout, the setting the
# SASRec paper set per dataset (0.2 for dense MovieLens, 0.5 for the sparse Amazon sets).
GRID: dict[str, list[Any]] = {"dropout": [0.2, 0.5]}
# text rows still rose at epoch 57 of 60, and patience 5 stopped them early (docs/results-notes.md)
EPOCHS, PATIENCE = 100, 10
# Tuning the top MiniLM block runs it forward and backward on every distinct item of a step (about
# 1,100 items x 46 tokens on amazon-scientific: 4.6 s a step, 150 s an epoch on 2 quiet cores,
# docs/tuned_blocks.md). Those rows get one trial, a 20-epoch cap and patience 3: they peak within
# a few epochs, and ten epochs of patience would cost more than the rest of the table.
TOPK_GRID: dict[str, list[Any]] = {"dropout": [0.5]}
TOPK_EPOCHS, TOPK_PATIENCE = 20, 3


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one dataset's workspace: importer, source folder, encoders per modality."""

    name: str
    importer: str
    source: str
    import_args: tuple[str, ...] = ()
    text_encoder: str | None = "minilm"
    image_encoder: str | None = None
    tune_top: tuple[str, ...] = ()  # modalities whose encoder's top blocks (stages) get tuned rows
    tune_top_k: tuple[int, ...] = (1,)  # how many top blocks those rows tune, one set of rows per K
    # users per batch: about 30 optimizer steps per epoch on every dataset (8,442 / 256 on
    # amazon-scientific); with 256 users ml-100k got 4 steps an epoch and stopped after ~20 steps
    batch_size: int = 256

    @property
    def modalities(self) -> list[str]:
        return [m for m, enc in (("text", self.text_encoder), ("image", self.image_encoder)) if enc]


DATASETS = {
    "amazon-scientific": DatasetSpec("amazon-scientific", "unisrec", "amazon-scientific", tune_top=("text",), tune_top_k=(1, 2)),
    "amazon-office": DatasetSpec("amazon-office", "rechorus", "amazon-office", tune_top=("text",), batch_size=160),
    "ml-100k": DatasetSpec("ml-100k", "movielens", "ml-100k", image_encoder="efficientnet-lite0", tune_top=("image",), batch_size=32),
    "hm-sample": DatasetSpec("hm-sample", "hm", "hm-sample", image_encoder="efficientnet-lite0", tune_top=("image",), batch_size=48),
}


@dataclass(frozen=True)
class Row:
    """One table row: a label, its group (ID / MoRec / Fusion) and its `recx train` options."""

    key: str
    label: str
    group: str
    args: tuple[str, ...]
    grid: dict[str, list[Any]] = field(default_factory=lambda: GRID)
    max_epochs: int | None = None  # a smaller cap than --epochs, for rows that cost far more per epoch
    patience: int | None = None  # replaces --patience: longer for slow learners, shorter for costly rows
    warm_from: str | None = None  # a row whose chosen trial seeds every trial of this one (--warm-start)


def rows_for(spec: DatasetSpec, grid: dict[str, list[Any]] | None = None) -> list[Row]:
    """The rows of one dataset's table, in display order, each searched over ``grid`` (default GRID)."""
    rows = [dataclasses.replace(r, args=(*r.args, "--batch-size", str(spec.batch_size))) for r in _rows(spec)]
    return rows if grid is None else [dataclasses.replace(r, grid=grid) for r in rows]


def _rows(spec: DatasetSpec) -> list[Row]:
    rows = []
    for loss in ("bce", "debiased_ce"):
        rows.append(Row(f"sasrec-id-{loss}", "SASRec, ID", "ID", ("--item-tower", "id", "--loss", loss)))
        for mod in spec.modalities:
            rows.append(Row(f"sasrec-{mod}-{loss}", f"SASRec, {mod} (frozen store + linear)", "MoRec", ("--item-tower", mod, "--loss", loss)))
    # BERT-whitened store features (--whiten): the adapter starts from isotropic inputs
    for mod in spec.modalities:
        rows.append(Row(f"sasrec-{mod}w-debiased_ce", f"SASRec, {mod} (frozen store, whitened + linear)", "MoRec",
                        ("--item-tower", mod, "--whiten", "--loss", "debiased_ce")))
    for mod, k in itertools.product(spec.tune_top, spec.tune_top_k):
        rows.append(topk_row(spec, mod, k, f"SASRec, {mod}, {top_blocks(mod, k)} tuned (trunk cache)", "MoRec"))
        rows.append(topk_row(spec, mod, k, f"SASRec, {mod}, {top_blocks(mod, k)} tuned after the frozen row", "MoRec",
                             warm_from=f"sasrec-{mod}-debiased_ce"))
    for loss in ("bce", "debiased_ce"):
        for mod in spec.modalities:
            rows.append(Row(f"sasrec-id+{mod}-{loss}", f"SASRec, ID + {mod} (add)", "Fusion", ("--item-tower", f"id+{mod}", "--loss", loss)))
    for mod in spec.modalities:
        rows.append(Row(f"sasrec-id+{mod}w-debiased_ce", f"SASRec, ID + {mod} (whitened, add)", "Fusion",
                        ("--item-tower", f"id+{mod}", "--whiten", "--loss", "debiased_ce")))
    for mod, k in itertools.product(spec.tune_top, spec.tune_top_k):
        rows.append(topk_row(spec, mod, k, f"SASRec, ID + {mod}, {top_blocks(mod, k)} tuned (add)", "Fusion", fused=True))
        rows.append(topk_row(spec, mod, k, f"SASRec, ID + {mod}, {top_blocks(mod, k)} tuned after the frozen row", "Fusion", fused=True,
                             warm_from=f"sasrec-id+{mod}-debiased_ce"))
    if len(spec.modalities) == 2:
        rows.append(Row("sasrec-text+image-debiased_ce", "SASRec, text + image (add)", "MoRec", ("--item-tower", "text+image", "--loss", "debiased_ce")))
    gru4rec = ("--model", "gru4rec", "--layers", "1", "--loss", "debiased_ce")
    rows.append(Row("gru4rec-id-debiased_ce", "GRU4Rec, ID", "ID", (*gru4rec, "--item-tower", "id")))
    # the same towers under a recurrent user encoder: is the MoRec-vs-ID answer the same, and a second view for ensembles
    for mod in spec.modalities:
        rows.append(Row(f"gru4rec-{mod}w-debiased_ce", f"GRU4Rec, {mod} (frozen store, whitened + linear)", "MoRec", (*gru4rec, "--item-tower", mod, "--whiten")))
        rows.append(Row(f"gru4rec-id+{mod}w-debiased_ce", f"GRU4Rec, ID + {mod} (whitened, add)", "Fusion", (*gru4rec, "--item-tower", f"id+{mod}", "--whiten")))
    # masked-item training gains slowly: with debiased CE and patience 5 it stopped at valid
    # NDCG@10 0.021 on amazon-scientific, so it trains with full CE and patience 20
    rows.append(Row("bert4rec-id-full_ce", "BERT4Rec, ID", "ID", ("--model", "bert4rec", "--item-tower", "id", "--loss", "full_ce"), patience=20))
    return rows


def top_blocks(modality: str, k: int) -> str:
    """What the top K are: transformer blocks of MiniLM; stages of EfficientNet-Lite0 (its last
    stage is one inverted-residual block at 7x7, with the 1x1 conv head above it)."""
    unit = "block" if modality == "text" else "stage"
    return f"top {unit}" if k == 1 else f"top {k} {unit}s"


def topk_store(spec: DatasetSpec, modality: str, k: int) -> str:
    """The ``modality`` store with the trunk's cached states below the encoder's top ``k`` blocks."""
    return f"stores/{spec.text_encoder if modality == 'text' else spec.image_encoder}-top{k}.h5"


def topk_row(spec: DatasetSpec, modality: str, k: int, label: str, group: str, fused: bool = False, warm_from: str | None = None) -> Row:
    """A row that tunes the ``modality`` encoder's top ``k`` blocks on the cached trunk states
    (``fused``: added to an ID table); with ``warm_from``, starting from that frozen-store row's
    trained weights (two-stage tuning).  Text keys keep their first names (sasrec-topk1-...)."""
    tower = "id+topk" if fused else "topk"
    name = tower.replace("topk", f"topk{k}" if modality == "text" else f"{modality}-topk{k}")
    key = f"sasrec-{name}{'-warm' if warm_from else ''}-debiased_ce"
    args = ("--item-tower", tower, "--store", f"topk={topk_store(spec, modality, k)}", "--loss", "debiased_ce")
    return Row(key, label, group, args, TOPK_GRID, TOPK_EPOCHS, TOPK_PATIENCE, warm_from=warm_from)


def recx(*args: str) -> list[str]:
    return [sys.executable, "-m", "recx.cli", *args]


def shown(cmd: list[str]) -> str:
    """The command as a user types it (`recx ...`)."""
    return shlex.join(["recx", *cmd[3:]] if cmd[:3] == recx() else cmd)


def call(cmd: list[str], cwd: Path, threads: int, log: Path) -> float:
    """Run one command with ``threads`` torch threads, append its output to ``log``; wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {shown(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {shown(cmd)} (cwd {cwd}); see {log}")
    return time.perf_counter() - t


def prepare(spec: DatasetSpec, ws: Path, threads: int) -> dict[str, Any]:
    """Import the dataset and write its stores (skipped when present); seconds per step."""
    ws.mkdir(parents=True, exist_ok=True)
    log, steps = ws / "study.log", {}
    if not (ws / "data" / "dataset.json").is_file():
        cmd = recx("data", "import", spec.importer, str(DATA_ROOT / spec.source), "-o", "data", "--workspace", ".", *spec.import_args)
        steps[shown(cmd)] = call(cmd, ws, threads, log)
    if spec.text_encoder and not (ws / "stores" / f"{spec.text_encoder}.h5").is_file():
        cmd = recx("featurize", "--model", spec.text_encoder)
        steps[shown(cmd)] = call(cmd, ws, threads, log)
    for mod, k in itertools.product(spec.tune_top, spec.tune_top_k):
        if not (ws / topk_store(spec, mod, k)).is_file():
            cmd = recx("featurize", "--model", spec.text_encoder if mod == "text" else spec.image_encoder, "--cache-top-k", str(k),
                       "-o", topk_store(spec, mod, k))
            steps[shown(cmd)] = call(cmd, ws, threads, log)
    if spec.image_encoder and not (ws / "stores" / f"{spec.image_encoder}.h5").is_file():
        cmd = recx("featurize", "--model", spec.image_encoder)
        steps[shown(cmd)] = call(cmd, ws, threads, log)
    return steps


def trial_name(row: Row, setting: dict[str, Any]) -> str:
    return row.key + "".join(f"--{k}{v}" for k, v in setting.items())


def budget_of(row: Row, args: argparse.Namespace) -> tuple[int, int]:
    """(epoch cap, patience) of a row's trials."""
    return min(args.epochs, row.max_epochs or args.epochs), row.patience or args.patience


def warm_source(row: Row, setting: dict[str, Any], ws: Path | None) -> str:
    """The run a warm-started row starts from: its source row's chosen trial in the workspace's
    study.json (chosen on validation), else the source's trial with this setting's GRID values."""
    state = json.loads((ws / "study.json").read_text()) if ws and (ws / "study.json").is_file() else {"rows": {}}
    chosen = state["rows"].get(row.warm_from, {}).get("chosen")
    return f"runs/{chosen or trial_name(Row(row.warm_from, '', '', ()), {k: v for k, v in setting.items() if k in GRID})}"


def train_command(row: Row, setting: dict[str, Any], epochs: int, patience: int, ws: Path | None = None) -> list[str]:
    opts = [x for k, v in setting.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    if row.warm_from:
        opts += ["--warm-start", warm_source(row, setting, ws)]
    return recx("train", *row.args, *opts, "--epochs", str(epochs), "--patience", str(patience), "--name", trial_name(row, setting), "--quiet")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def run_trial(row: Row, setting: dict[str, Any], ws: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) one trial; its best validation metrics and time."""
    run_dir = ws / "runs" / trial_name(row, setting)
    cmd = train_command(row, setting, *budget_of(row, args), ws)
    epochs, patience = budget_of(row, args)
    # a resumed trial gets the current budget: one cut by the epoch cap continues, an early-stopped one stays stopped
    resume = recx("train", "--resume", "--run", str(run_dir), "--epochs", str(epochs), "--patience", str(patience), "--quiet")
    todo = resume if (run_dir / "config.json").is_file() else cmd
    wall = call(todo, ws, args.threads, ws / "study.log")
    history = read_metrics(run_dir)
    best = max(history, key=lambda r: r["valid"]["ndcg@10"])
    return {
        "name": run_dir.name, "setting": setting, "command": shown(cmd), "valid": best["valid"], "best_epoch": best["epoch"],
        "epochs": len(history), "train_seconds": sum(r["seconds"] for r in history), "wall_seconds_last_call": wall,
        "curve": [[r["epoch"], r["valid"]["ndcg@10"]] for r in history],
    }


def test_metrics(ws: Path, run_name: str, threads: int) -> dict[str, Any]:
    """`recx eval` on the test split with history kept and with history excluded."""
    run_dir = ws / "runs" / run_name
    out = {}
    for convention, flag in (("kept", []), ("excluded", ["--exclude-history"])):
        call(recx("eval", "--run", str(run_dir), "--split", "test", "--k", "10", "--no-baselines", *flag), ws, threads, ws / "study.log")
        record = json.loads((run_dir / "results.json").read_text())
        out[convention] = {"metrics": record["metrics"], "ci95": record.get("ci95", {})}
    return out


BASELINES = {"popularity": "Popularity", "popularity-recent": "Popularity among the histories' newest items"}


def baseline_rows(ws: Path) -> dict[str, dict[str, Any]]:
    """The popularity baselines on test (all-time training counts, and counts over each history's
    newest item, which tracks catalogs that drift), both conventions, with bootstrap CIs."""
    import recx  # noqa: F401
    from recx.data.dataset import SequenceDataset
    from recx.evaluate.protocol import popularity_result, recent_popularity_result
    from recx.evaluate.stats import bootstrap_ci

    dataset = SequenceDataset(ws / "data")
    rows = {}
    for key, baseline in (("popularity", popularity_result), ("popularity-recent", recent_popularity_result)):
        out = {}
        for convention, exclude in (("kept", False), ("excluded", True)):
            res = baseline(dataset, "test", (10,), exclude_history=exclude)
            out[convention] = {"metrics": res.metrics, "ci95": {k: list(v) for k, v in bootstrap_ci(res.per_user).items()}}
        rows[key] = {"key": key, "label": BASELINES[key], "group": "Baseline", "test": out}
    return rows


def train_trials(spec: DatasetSpec, trials: list[tuple[Row, dict[str, Any]]], args: argparse.Namespace) -> list[tuple[Row, dict[str, Any]]]:
    """Train (or resume) ``trials``, ``args.jobs`` at a time, warm-started rows after the rows
    they start from; each trial's result (see ``run_trial``)."""
    ws = args.work / spec.name

    def one(trial: tuple[Row, dict[str, Any]]) -> tuple[Row, dict[str, Any]]:
        row, setting = trial
        result = run_trial(row, setting, ws, args)
        print(f"[{spec.name}] {result['name']}: valid ndcg@10 {result['valid']['ndcg@10']:.4f} "
              f"(epoch {result['best_epoch']}, {result['train_seconds']:.0f}s)", flush=True)
        return row, result

    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(pool.map(one, [t for t in trials if not t[0].warm_from]))
        return done + list(pool.map(one, [t for t in trials if t[0].warm_from]))


def save_state(spec: DatasetSpec, state: dict[str, Any], args: argparse.Namespace) -> None:
    """The dataset's study.json, in the work folder and in the copy kept in the repository."""
    save_json(args.work / spec.name / "study.json", state)
    save_json(KEPT / f"{spec.name}.json", state)


def run_dataset(spec: DatasetSpec, args: argparse.Namespace) -> None:
    ws = args.work / spec.name
    t0 = time.perf_counter()
    steps = prepare(spec, ws, args.threads * args.jobs)
    out_path = ws / "study.json"
    rows = [r for r in rows_for(spec, args.grid) if not args.only or r.key in args.only]
    done = train_trials(spec, [(row, dict(zip(row.grid, values))) for row in rows for values in itertools.product(*row.grid.values())], args)
    # another driver may have finished rows meanwhile: merge into what is on disk now
    state = json.loads(out_path.read_text()) if out_path.is_file() else {"rows": {}}
    state.update(dataset=spec.name, prepare_seconds={**state.get("prepare_seconds", {}), **steps})
    state["rows"].update(baseline_rows(ws))
    for row in rows:
        # trials of earlier calls (other grids) stay candidates: the row's budget is all of them
        trials = {t["name"]: t for t in state["rows"].get(row.key, {}).get("trials", [])}
        trials.update({r["name"]: r for rr, r in done if rr.key == row.key})
        chosen = max(trials.values(), key=lambda r: r["valid"]["ndcg@10"])
        state["rows"][row.key] = {
            "key": row.key, "label": row.label, "group": row.group, "trials": list(trials.values()), "chosen": chosen["name"],
            "test": test_metrics(ws, chosen["name"], args.threads * args.jobs),
        }
        print(f"[{spec.name}] {row.key}: chose {chosen['name']}, test ndcg@10 "
              f"{state['rows'][row.key]['test']['kept']['metrics']['ndcg@10']:.4f}", flush=True)
    state["row_order"] = [r.key for r in rows_for(spec)]
    # one budget per (epoch cap, patience) among this call's rows: tuned-block rows have their own
    by_budget: dict[tuple[int, int, str], list[str]] = {}
    for row in rows:  # row.grid is the search space its trials had (--grid replaces every row's)
        by_budget.setdefault((*budget_of(row, args), json.dumps(row.grid)), []).append(row.key)
    for (epochs, patience, grid), keys in by_budget.items():
        budget = {"grid": json.loads(grid), "rows": keys, "epochs": epochs, "patience": patience}
        # resumed trials ran under this call's epochs and patience, so an earlier budget of the same grid and rows is replaced
        state["budgets"] = [b for b in state.get("budgets", []) if (b["grid"], b["rows"]) != (budget["grid"], budget["rows"])] + [budget]
    state["wall_seconds_last_call"] = time.perf_counter() - t0
    state["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "threads_per_job": args.threads, "jobs": args.jobs, "load_average_end": os.getloadavg()}
    save_state(spec, state, args)


def replicate_dataset(spec: DatasetSpec, args: argparse.Namespace) -> None:
    """Retrain each selected row's chosen trial with ``args.seeds``.

    Seeds are not a hyperparameter: the replicas never change a row's chosen trial. Their test
    metrics show how much of a row's number is seed noise, and they are ensemble candidates
    (weighed on validation like every other trial)."""
    ws = args.work / spec.name
    out_path = ws / "study.json"
    state = json.loads(out_path.read_text())
    rows = [r for r in rows_for(spec) if (not args.only or r.key in args.only) and state["rows"].get(r.key, {}).get("chosen")]
    todo = []
    for row in rows:
        record = state["rows"][row.key]
        chosen = next(t for t in record["trials"] if t["name"] == record["chosen"])
        todo += [(row, {**chosen["setting"], "seed": seed}) for seed in args.seeds]
    done = train_trials(spec, todo, args)
    state = json.loads(out_path.read_text())  # merge into what is on disk now
    for row, result in done:
        result["test"] = test_metrics(ws, result["name"], args.threads * args.jobs)
        replicas = {t["name"]: t for t in state["rows"][row.key].get("replicas", [])}
        replicas[result["name"]] = result
        state["rows"][row.key]["replicas"] = list(replicas.values())
    save_state(spec, state, args)


EXTRA = "extra:"  # an ensemble member's "row" for a run trained outside the study: "extra:<run dir>"


def run_group(config: dict[str, Any]) -> str:
    """The study group of a run trained outside the study, from its config.json: a run with an
    ID table is ID or Fusion, anything else (a store tower, Reo-LM) is MoRec."""
    tower = str(config.get("item_tower", ""))
    if config.get("model") == "reo-lm" or "id" not in tower.split("+"):
        return "MoRec"
    return "ID" if tower == "id" else "Fusion"


# Ensembles (`recx ensemble`, greedy selection on valid NDCG@10) over every trained trial of the
# rows in these groups: all rows, the ID rows only, the modality rows only (no ID table), so a
# gain can be told apart from plain averaging. Every trial is a candidate, not only each row's
# chosen one: all were trained on the training split and are weighed on validation alone.
ENSEMBLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ensemble-all": ("Ensemble of every trained row (greedy on valid)", ("ID", "MoRec", "Fusion")),
    "ensemble-id": ("Ensemble of the ID rows (greedy on valid)", ("ID",)),
    "ensemble-morec": ("Ensemble of the modality rows, no ID table (greedy on valid)", ("MoRec",)),
}


def ensemble_dataset(spec: DatasetSpec, args: argparse.Namespace) -> None:
    """Build, evaluate and record the ENSEMBLES over the trials already in the dataset's study.json."""
    ws = args.work / spec.name
    out_path = ws / "study.json"
    state = json.loads(out_path.read_text())
    current = {r.key for r in rows_for(spec)}
    rows = [r for k, r in state["rows"].items() if r.get("chosen") and k in current]
    extra = [(run_group(json.loads((run / "config.json").read_text())), run.resolve()) for run in args.extra]
    for key, (label, groups) in ENSEMBLES.items():
        trials = [(r["key"], ws / "runs" / t["name"]) for r in rows if r["group"] in groups
                  for t in r["trials"] + r.get("replicas", [])]
        trials += [(f"{EXTRA}{run}", run) for group, run in extra if group in groups]
        if len(trials) < 2:
            continue
        out = ws / "runs" / key
        wall = call(recx("ensemble", *(str(run) for _, run in trials), "--out", str(out), "--force"),
                    ws, args.threads * args.jobs, ws / "study.log")
        record = json.loads((out / "ensemble.json").read_text())
        weight = {Path(m["run"]).resolve(): m["weight"] for m in record["members"]}
        state["rows"][key] = {
            "key": key, "label": label, "group": "Ensemble", "chosen": None,
            "ensemble": {"method": record["selection"]["method"], "valid": {"ndcg@10": record["selection"]["value"]}, "wall_seconds": wall,
                         "members": [{"row": row, "trial": run.name, "weight": weight[run.resolve()]} for row, run in trials]},
            "test": test_metrics(ws, key, args.threads * args.jobs),
        }
        print(f"[{spec.name}] {key}: valid ndcg@10 {record['selection']['value']:.4f}, test ndcg@10 "
              f"{state['rows'][key]['test']['kept']['metrics']['ndcg@10']:.4f}", flush=True)
    save_state(spec, state, args)


def save_json(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def study_state(work: Path, name: str) -> Path | None:
    """A dataset's study.json: the work folder's, else the copy kept in the repository."""
    for path in (work / name / "study.json", KEPT / f"{name}.json"):
        if path.is_file():
            return path
    return None


def _grid_item(text: str) -> tuple[str, list[Any]]:
    key, _, values = text.partition("=")
    if not key or not values:
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2,..., got {text!r}")
    return key, [json.loads(v) if v[:1].isdigit() or v[:1] == "-" else v for v in values.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "ensemble", "report", "list"])
    ap.add_argument("--dataset", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--only", nargs="*", help="row keys to run (default: all)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--patience", type=int, default=PATIENCE)
    ap.add_argument("--jobs", type=int, default=1, help="trials trained at the same time")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per trial")
    ap.add_argument("--grid", nargs="*", type=_grid_item, help="search space replacing GRID, e.g. temperature=0.05,0.1 hidden=64,128")
    ap.add_argument("--seeds", nargs="*", type=int, help="run: retrain the chosen trial of each row with these seeds instead "
                    "(replicas: seed spread and ensemble candidates, never the row's choice)")
    ap.add_argument("--extra", nargs="*", type=Path, default=[], help="ensemble: finished runs of the same dataset trained outside "
                    "the study (e.g. Reo-LM), offered to the ensembles of their group")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results.md")
    args = ap.parse_args()
    args.work = args.work.resolve()
    args.grid = dict(args.grid) if args.grid else None
    if args.action == "list":
        for name in args.dataset:
            for row in rows_for(DATASETS[name], args.grid):
                for values in itertools.product(*row.grid.values()):
                    print(f"{name}: {shown(train_command(row, dict(zip(row.grid, values)), *budget_of(row, args), args.work / name))}")
    elif args.action == "run":
        for name in args.dataset:
            (replicate_dataset if args.seeds else run_dataset)(DATASETS[name], args)
    elif args.action == "ensemble":
        for name in args.dataset:
            ensemble_dataset(DATASETS[name], args)
    else:
        from study_report import write_report

        write_report({n: p for n in args.dataset if (p := study_state(args.work, n)) is not None}, args.out)


if __name__ == "__main__":
    main()
