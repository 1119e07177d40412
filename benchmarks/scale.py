"""How recx grows with the data: synthetic catalogs of 0.1M, 1M and 10M interactions, every
stage timed with its peak memory -> docs/scale.json and the generated table in docs/scale.md.

The data (recx/data/scale_synth.py): Zipf-skewed item popularity, geometric sequence lengths
(mean 10), a text for every item; items = interactions / 10, users about the same.

Stages, each one `recx` command in its own process (peak memory = that process's ``ru_maxrss``):
  import      `recx data import csv` of the interactions and items files
  featurize   `recx featurize --model minilm --max-tokens 32`: to the end where the catalog is at
              most --featurize-items, otherwise stopped after --featurize-seconds and projected
              from the items it wrote (items / elapsed, model loading and planning included)
  store       (larger catalogs) a text store of random vectors at MiniLM's width, written with
              recx's StoreWriter, so the ID + text tower can be timed; its vectors mean nothing
  train-id    `recx train --epochs 1 --valid-users 10000` (SASRec over an ID table): one epoch
              and its validation on a fixed sample of 10,000 users
  train-id+text  the same with `--item-tower id+text`
  eval        `recx eval --k 10 --no-baselines` of train-id on the test users
  recommend   `recx recommend --user ...` for 10 users (loading the run and the catalog included)
  export      `recx export --no-onnx` (item vectors, FAISS index, user encoder)

Each finished stage is recorded in the JSON at once; a rerun skips what is recorded (delete a
size's entries to measure it again), so a killed run resumes at its stage.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/scale.py run --sizes 0.1M,1M,10M --work /tmp/scale
    .venv/bin/python benchmarks/scale.py report      # docs/scale.md's generated table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx

from recx.artifacts import atomic_write_text  # noqa: E402
from recx.data.scale_synth import write_csv_log  # noqa: E402
from recx.featurize.store import partial_path  # noqa: E402

DOCS = ROOT / "docs"
MEMORY_GOAL_GIB = 8.0
VALID_USERS = 10_000  # a fixed sample: validating a million users twice (with and without the history term) outlasts the epoch
STAGES = ("generate", "import", "featurize", "store", "train-id", "train-id+text", "eval", "recommend", "export")


def parse_size(text: str) -> int:
    """'0.1M' / '10M' / '250k' / '5000' -> interactions."""
    scale = {"k": 10**3, "m": 10**6}.get(text[-1].lower(), 1)
    return int(round(float(text[:-1] if scale > 1 else text) * scale))


def label(interactions: int) -> str:
    return f"{interactions / 1e6:g}M"


# -- data -------------------------------------------------------------------------------------
def random_store(dataset_dir: Path, out: Path, dim: int = 384, seed: int = 0) -> None:
    """A finished text store of random unit vectors for every item (timing only)."""
    from recx.data.dataset import SequenceDataset
    from recx.featurize.store import StoreWriter

    ds = SequenceDataset(dataset_dir)
    n = ds.num_items
    attrs = {"encoder": "random (benchmarks/scale.py: timing only)", "modality": "text", "layer": -1, "pooling": "mean",
             "catalog_fingerprint": ds.catalog_fingerprint, "item_count": n, "normalize": True}
    writer = StoreWriter(out, n + 1, dim, attrs, chunk_rows=65536, resume=False, planned=n)
    rng = np.random.default_rng(seed)
    for lo in range(1, n + 1, 65536):
        rows = np.arange(lo, min(n + 1, lo + 65536))
        v = rng.standard_normal((len(rows), dim), dtype=np.float32)
        writer.write_rows(rows, v / np.linalg.norm(v, axis=1, keepdims=True))
    writer.finish()


# -- measuring --------------------------------------------------------------------------------
def run_measured(args: list[str], cwd: Path, timeout: float | None = None) -> dict[str, Any]:
    """Run ``recx ARGS`` in its own process -> {wall_s, peak_rss_gib, rc, timed_out, tail}."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "160"}
    log = cwd / "stage.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from recx.cli import main; main()", *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - t0 > timeout and not timed_out:
                os.killpg(proc.pid, signal.SIGTERM)  # not SIGINT: background jobs inherit it ignored
                timed_out = True
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    if proc.returncode != 0 and not timed_out:
        raise SystemExit(f"recx {' '.join(args)} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    return {"wall_s": round(wall, 2), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3), "rc": proc.returncode,
            "timed_out": timed_out, "command": "recx " + " ".join(args)}


def epoch_seconds(run: Path) -> dict[str, float]:
    """From the run's metrics.jsonl: the first epoch's training seconds and positions per second
    (the rest of the stage's wall time is start-up, validation and the checkpoint)."""
    from recx.trainer.checkpoint import read_metrics

    row = read_metrics(run)[0]
    return {"epoch_s": round(row["seconds"], 2), "positions_per_s": round(row["positions_per_s"]), "steps": row["steps"]}


def measure_size(size: int, work: Path, record, args) -> None:
    """Every stage of one size, skipping those ``record`` already holds."""
    name = label(size)
    folder = work / name
    ws = folder / "ws"
    done = record.done(name)

    def stage(key: str, fn) -> None:
        if key in done or key not in args.stages.split(","):
            return
        print(f"{name} {key} ...", flush=True)
        result = fn()
        if result is not None:
            record.add(name, key, result)
            print(f"{name} {key}: {result.get('wall_s')} s, {result.get('peak_rss_gib')} GiB", flush=True)

    def generate():
        t0 = time.perf_counter()
        counts = write_csv_log(folder / "csv", size)
        return {"wall_s": round(time.perf_counter() - t0, 2), **counts}

    def import_():
        ws.mkdir(parents=True, exist_ok=True)
        return run_measured(["data", "import", "csv", str(folder / "csv" / "interactions.csv"), "--items", str(folder / "csv" / "items.csv"),
                             "-o", str(folder / "data"), "--workspace", str(ws), "--force", "-q"], ws)

    def featurize():
        from recx.data.dataset import SequenceDataset

        n = SequenceDataset(folder / "data").num_items
        whole = n <= args.featurize_items
        out = ws / "stores" / "minilm.h5"
        res = run_measured(["featurize", "--model", "minilm", "--max-tokens", "32", "-o", str(out), "-q", "--offline", "--no-resume"],
                           ws, timeout=None if whole else args.featurize_seconds)
        res["items"] = n
        res["items_done"] = n if whole else _rows_done(out)
        res["items_per_s"] = round(res["items_done"] / res["wall_s"], 1)
        res["projected_s"] = res["wall_s"] if whole else round(n / res["items_per_s"], 0)
        return res

    def store():
        out = ws / "stores" / "minilm.h5"
        if out.is_file():
            return {"wall_s": 0.0, "kind": "featurized (MiniLM)"}
        t0 = time.perf_counter()
        partial_path(out).unlink(missing_ok=True)
        random_store(folder / "data", out)
        return {"wall_s": round(time.perf_counter() - t0, 2), "kind": "random vectors (timing only)"}

    def train(tower: str):
        def go():
            run = ws / "runs" / tower
            shutil.rmtree(run, ignore_errors=True)  # this script's own run, left by a killed call
            res = run_measured(["train", "--epochs", "1", "--item-tower", tower, "--name", tower, "--valid-users", str(VALID_USERS), "-q",
                                *(["--store", f"text={ws / 'stores' / 'minilm.h5'}"] if "text" in tower else [])], ws)
            res.update(epoch_seconds(run))
            return res
        return go

    # the stages the 8 GiB goal names first: import, an ID epoch, evaluation
    stage("generate", generate)
    stage("import", import_)
    stage("train-id", train("id"))
    stage("eval", lambda: run_measured(["eval", "--run", str(ws / "runs" / "id"), "--k", "10", "--no-baselines"], ws))
    stage("featurize", featurize)
    stage("store", store)
    stage("train-id+text", train("id+text"))
    users = [f"u{u}" for u in range(0, 1000, 100)]
    stage("recommend", lambda: run_measured(["recommend", "--run", str(ws / "runs" / "id"), *sum((["--user", u] for u in users), []),
                                             "--format", "jsonl"], ws))
    stage("export", lambda: run_measured(["export", "--run", str(ws / "runs" / "id"), "-o", str(ws / "export"), "--no-onnx", "--force", "-q"], ws))


def _rows_done(store: Path) -> int:
    import h5py

    for path in (store, partial_path(store)):
        if path.is_file():
            with h5py.File(path, "r") as f:
                return int(f.attrs["rows_done"])
    return 0


class Record:
    """docs/scale.json: {"machine": ..., "sizes": {label: {stage: result}}}, saved after every stage."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"sizes": {}}

    def done(self, size: str) -> set[str]:
        return set(self.data["sizes"].get(size, {}))

    def add(self, size: str, stage: str, result: dict[str, Any]) -> None:
        result = {**result, "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)),
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        if self.path.is_file():  # another call may be measuring another size into the same file
            self.data = json.loads(self.path.read_text())
        self.data["sizes"].setdefault(size, {})[stage] = result
        self.data["machine"] = machine()
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")


def machine() -> dict[str, Any]:
    import torch

    from recx.device import cpu_has_fast_bf16

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "native_bf16": cpu_has_fast_bf16(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


# -- report -----------------------------------------------------------------------------------
def growth(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The exponent e of y ~ x^e through two points (x, y)."""
    return float(np.log(b[1] / a[1]) / np.log(b[0] / a[0]))


def report(data: dict[str, Any]) -> str:
    sizes = sorted(data["sizes"], key=lambda s: data["sizes"][s]["generate"]["interactions"])
    lines = ["| stage | " + " | ".join(f"{s} wall s / peak GiB" for s in sizes) + " | growth of time (memory) |",
             "|---|" + "---:|" * len(sizes) + "---:|"]
    extra = sorted({k for s in sizes for k in data["sizes"][s]} - set(STAGES))  # stages kept from earlier code (their "note" says)
    for stage in [*STAGES[1:], *extra]:
        cells, points = [], []
        for s in sizes:
            r = data["sizes"][s].get(stage)
            n = data["sizes"][s]["generate"]["interactions"]
            if r is None:
                cells.append("")
                continue
            wall = r.get("projected_s", r["wall_s"])
            mark = " (projected)" if stage == "featurize" and r.get("items_done") != r.get("items") else ""
            over = " **over 8 GiB**" if r.get("peak_rss_gib", 0) > MEMORY_GOAL_GIB else ""
            mem = f" / {r['peak_rss_gib']:.2f}" if "peak_rss_gib" in r else ""
            epoch = f" (epoch {r['epoch_s']:,.0f})" if "epoch_s" in r else ""
            if r.get("finished_stage") is False:  # stopped by hand; its note says where
                cells.append(f"stopped after {wall:,.0f}{mem} ({r['users_ranked']:,} of {r['users']:,} users ranked)")
                continue
            cells.append(f"{wall:,.1f}{mark}{mem}{epoch}{over}")
            points.append((n, wall, r.get("peak_rss_gib")))
        grow = ""
        if len(points) >= 2 and points[0][1] > 0:
            t = growth(points[-2][:2], points[-1][:2])
            m = growth((points[-2][0], points[-2][2]), (points[-1][0], points[-1][2])) if points[-1][2] else None
            grow = f"{t:.2f}" + (f" ({m:.2f})" if m is not None else "")
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {grow} |")
    counts = ", ".join(f"{s}: {data['sizes'][s]['generate']['users']:,} users, {data['sizes'][s]['generate']['items']:,} items"
                       for s in sizes)
    return "\n".join(lines) + (f"\n\nSizes: {counts}. Growth: the exponent e of time ~ interactions^e (and of peak memory) between the "
                                "two largest sizes measured. Train cells: the stage's wall time (start-up, one epoch, validation on "
                                "10,000 users, checkpoint) and, in brackets, the epoch's training seconds.\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("run", "report"))
    p.add_argument("--sizes", default="0.1M,1M,10M")
    p.add_argument("--work", type=Path, default=Path("/tmp/recx-scale"))
    p.add_argument("--json", type=Path, default=DOCS / "scale.json")
    p.add_argument("--markdown", type=Path, default=DOCS / "scale.md")
    p.add_argument("--stages", default=",".join(STAGES), help="the stages to measure (each needs the ones before it that it reads)")
    p.add_argument("--featurize-items", type=int, default=20_000, help="featurize catalogs up to this size to the end")
    p.add_argument("--featurize-seconds", type=float, default=180, help="larger catalogs: stop featurize after this long and project")
    args = p.parse_args(argv)
    record = Record(args.json)
    if args.what == "run":
        for size in (parse_size(s) for s in args.sizes.split(",")):
            measure_size(size, args.work, record, args)
    table = report(record.data)
    begin, end = "<!-- generated by benchmarks/scale.py: begin -->", "<!-- generated by benchmarks/scale.py: end -->"
    text = args.markdown.read_text() if args.markdown.is_file() else f"# recx at scale\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    args.markdown.write_text(head + begin + "\n" + table + end + rest.split(end, 1)[1])
    print(table)


if __name__ == "__main__":
    main()
