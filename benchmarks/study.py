"""`recx study` on our datasets: build each workspace, run the study, keep its outputs in docs/.

    .venv/bin/python benchmarks/study.py run --dataset amazon-scientific --budget-minutes 120 --workers 2
    .venv/bin/python benchmarks/study.py parallel --trials 8 --epochs 30   # 1 process x 2 threads vs 2 x 1 thread
    .venv/bin/python benchmarks/study.py report          # docs/results.md from docs/study/<dataset>/results.json
    .venv/bin/python benchmarks/study.py screenshot --dataset amazon-scientific   # headless Chromium -> docs/img/

Everything a study decides is `recx study`'s; this script only knows, per dataset, how to import
it, which encoders featurize it and how many users make a batch.  Rerunning `run` continues the
study where it stopped (its storage and runs live in <work>/<dataset>/study).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_WORK = Path("/tmp/recx-study")
KEPT = REPO / "docs" / "study"  # docs/study/<dataset>/: results.json, report.md, report.html, run.json
STUDY_FILES = ("results.json", "report.md", "report.html")
# the study's fixed options: the earlier hand-run study's epoch cap and patience (text rows still
# rose at epoch 57 of 60 with patience 5, docs/results-notes.md)
EPOCHS, PATIENCE = 100, 10


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one dataset's workspace: importer, source folder, encoders per modality."""

    name: str
    importer: str
    source: str
    import_args: tuple[str, ...] = ()
    text_encoder: str | None = "minilm"
    image_encoder: str | None = None
    # users per batch: about 30 optimizer steps per epoch on every dataset (8,442 / 256 on
    # amazon-scientific); with 256 users ml-100k got 4 steps an epoch and stopped after ~20 steps
    batch_size: int = 256


DATASETS = {
    "amazon-scientific": DatasetSpec("amazon-scientific", "unisrec", "amazon-scientific"),
    "amazon-office": DatasetSpec("amazon-office", "rechorus", "amazon-office", batch_size=160),
    "ml-100k": DatasetSpec("ml-100k", "movielens", "ml-100k", image_encoder="efficientnet-lite0", batch_size=32),
    "hm-sample": DatasetSpec("hm-sample", "hm", "hm-sample", image_encoder="efficientnet-lite0", batch_size=48),
}


def recx(*args: str) -> list[str]:
    return [sys.executable, "-m", "recx.cli", *args]


def shown(cmd: list[str]) -> str:
    """The command as a user types it (`recx ...`), paths beside the checkout relative to it
    (``../shared/data/...``), so a record names no machine's checkout path."""
    args = ["recx", *cmd[3:]] if cmd[:3] == recx() else cmd
    return shlex.join(os.path.relpath(a, REPO) if a.startswith(str(REPO.parent) + os.sep) else a for a in args)


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}


def call(cmd: list[str], cwd: Path, threads: int, log: Path) -> float:
    """Run one command with ``threads`` torch threads, append its output to ``log``; wall seconds."""
    t = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {shown(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=thread_env(threads), stdout=out, stderr=subprocess.STDOUT)
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
    for encoder in (spec.text_encoder, spec.image_encoder):
        if encoder and not (ws / "stores" / f"{encoder}.h5").is_file():
            cmd = recx("featurize", "--model", encoder)
            steps[shown(cmd)] = call(cmd, ws, threads, log)
    return steps


def study_command(spec: DatasetSpec, args: argparse.Namespace) -> list[str]:
    """The `recx study` command of one dataset (run in its workspace)."""
    fixed = {"batch_size": spec.batch_size, "epochs": args.epochs, "patience": args.patience}
    cmd = recx("study", "--trials", str(args.trials), "--seeds", str(args.seeds), "--budget-minutes", str(args.budget_minutes))
    if args.towers:
        cmd += ["--towers", args.towers]
    for key, value in fixed.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def run_dataset(spec: DatasetSpec, args: argparse.Namespace) -> None:
    """Prepare the workspace, run the study with ``args.workers`` processes, keep its outputs."""
    ws = args.work / spec.name
    steps = prepare(spec, ws, args.threads * args.workers)
    cmd = study_command(spec, args)
    log = ws / "study.log"
    t = time.perf_counter()
    workers = [subprocess.Popen([*cmd, "--worker"], cwd=ws, env=thread_env(args.threads), stdout=log.open("a"), stderr=subprocess.STDOUT)
               for _ in range(args.workers - 1)]
    try:
        seconds = call(cmd, ws, args.threads, log)
    finally:
        for w in workers:
            w.wait()
    kept = KEPT / spec.name
    kept.mkdir(parents=True, exist_ok=True)
    for name in STUDY_FILES:
        shutil.copyfile(ws / "study" / name, kept / name)
    runs_file = kept / "run.json"
    history = json.loads(runs_file.read_text())["calls"] if runs_file.is_file() else []
    history.append({"command": shown(cmd), "workers": args.workers, "threads_per_worker": args.threads, "wall_seconds": seconds,
                    "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - (time.perf_counter() - t))),
                    "prepare_seconds": steps, "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}})
    runs_file.write_text(json.dumps({"dataset": spec.name, "calls": history}, indent=1) + "\n")
    print(f"kept {kept}: {', '.join(STUDY_FILES)}, run.json")


def parallel(spec: DatasetSpec, args: argparse.Namespace) -> None:
    """The same small study run by one process with 2 threads and by 2 processes with 1 thread
    each, sharing one SQLite storage: wall time and trials -> docs/study/<dataset>/parallel.json."""
    ws = args.work / spec.name
    prepare(spec, ws, 2)
    rows = []
    for workers, threads in ((1, 2), (2, 1)):
        out = ws / f"parallel-{workers}x{threads}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [*recx("study", "--towers", args.towers or "id", "--trials", str(args.trials), "--seeds", "1", "-o", str(out),
                     "--set", f"batch_size={spec.batch_size}", "--set", f"epochs={args.epochs}", "--set", f"patience={args.patience}")]
        log = ws / f"parallel-{workers}x{threads}.log"
        t = time.perf_counter()
        others = [subprocess.Popen([*cmd, "--worker"], cwd=ws, env=thread_env(threads), stdout=log.open("a"), stderr=subprocess.STDOUT)
                  for _ in range(workers - 1)]
        call(cmd, ws, threads, log)
        for w in others:
            w.wait()
        wall = time.perf_counter() - t
        results = json.loads((out / "results.json").read_text())
        c = results["candidates"][0]
        rows.append({"workers": workers, "threads_per_worker": threads, "wall_seconds": wall, "trials": c["trials"],
                     "trial_seconds": c["search_seconds"], "test_ndcg@10": c["metrics"]["ndcg@10"], "command": shown(cmd)})
        print(f"{workers} x {threads} threads: {wall:.0f}s wall, trials {c['trials']}, {c['search_seconds']:.0f}s of trial training")
    kept = KEPT / spec.name
    kept.mkdir(parents=True, exist_ok=True)
    (kept / "parallel.json").write_text(json.dumps({"dataset": spec.name, "machine": {"processor": platform.processor() or platform.machine(),
                                                   "cpus": os.cpu_count()}, "rows": rows}, indent=1) + "\n")


def screenshot(name: str, out: Path) -> None:
    """The kept report.html rendered by headless Chromium (apt's chromium) into ``out``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no Chromium found: apt-get install chromium")
    page = (KEPT / name / "report.html").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={out}",
                    "--window-size=1100,1900", page.as_uri()], check=True, capture_output=True)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "parallel", "report", "screenshot"])
    ap.add_argument("--dataset", nargs="*", default=["amazon-scientific"], choices=list(DATASETS))
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--towers", help="recx study --towers (default: every tower the stores allow)")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget-minutes", type=float, default=120.0)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--patience", type=int, default=PATIENCE)
    ap.add_argument("--workers", type=int, default=1, help="recx study processes sharing the study's storage")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per process")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results.md")
    args = ap.parse_args()
    args.work = args.work.resolve()
    if args.action == "run":
        for name in args.dataset:
            run_dataset(DATASETS[name], args)
    elif args.action == "parallel":
        for name in args.dataset:
            parallel(DATASETS[name], args)
    elif args.action == "screenshot":
        for name in args.dataset:
            screenshot(name, REPO / "docs" / "img" / f"study-{name}.png")
    else:
        from study_report import write_report

        write_report(args.out)


if __name__ == "__main__":
    main()
