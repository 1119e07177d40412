"""fp32 against bf16 autocast for SASRec on one dataset: speed and accuracy over seeds.

    .venv/bin/python benchmarks/precision.py [--dataset amazon-scientific] [--seeds 42 1 2] [--threads 2]
    .venv/bin/python benchmarks/precision.py report     # docs/precision.md from docs/precision.json

Trains SASRec (ID and ID + text, recx's defaults otherwise, losses always in fp32) with
`--precision fp32` and `--precision bf16`, each seed, in the workspace benchmarks/repeats.py
prepares (--work), one job at a time.  Per run: seconds per epoch (training only), epochs to the
best validation, seconds to it, test NDCG@10 / HR@10; per (tower, seed): the paired test of bf16
against fp32 over users.  Also this CPU's matmul peak in both dtypes.  Finished runs are kept and
not retrained.  Results: docs/precision.json, docs/precision.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reolm import bf16_peak  # noqa: E402
from repeats import evaluate, paired  # noqa: E402
from study import DATASETS, call, prepare, recx, shown  # noqa: E402

OUT_JSON, OUT_MD = ROOT / "docs" / "precision.json", ROOT / "docs" / "precision.md"
TOWERS = {"id": ("--item-tower", "id"), "id+text": ("--item-tower", "id+text")}


def cpu_flags() -> list[str]:
    """The CPU features that decide whether bf16 runs natively (lscpu)."""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    line = next((x for x in flags.splitlines() if x.startswith("Flags:")), "")
    return sorted(f for f in line.split() if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f"))


def run_row(ws: Path, tower: str, precision: str, seed: int, batch: int, threads: int) -> dict[str, Any]:
    name = f"precision-{tower}-{precision}-{seed}"
    run_dir = ws / "runs" / name
    cmd = recx("train", *TOWERS[tower], "--loss", "debiased_ce", "--precision", precision, "--seed", str(seed), "--batch-size", str(batch),
               "--epochs", "100", "--patience", "10", "--name", name, "--quiet")
    row: dict[str, Any] = {"command": shown(cmd), "threads": threads}
    if not (run_dir / "finished.json").is_file():
        row["wall_seconds"] = round(call(cmd, ws, threads, ws / "precision.log"), 1)
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = max(epochs, key=lambda r: r["valid"]["ndcg@10"])
    row.update(epochs=len(epochs), best_epoch=best["epoch"], seconds_per_epoch=float(np.mean([r["seconds"] for r in epochs])),
               seconds_to_best=float(sum(r["seconds"] for r in epochs if r["epoch"] <= best["epoch"])), valid_ndcg=best["valid"]["ndcg@10"])
    row["test"] = evaluate(run_dir)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="amazon-scientific", choices=list(DATASETS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-repeats"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import dataclasses

    spec = dataclasses.replace(DATASETS[args.dataset], image_encoder=None)
    ws = args.work.resolve() / args.dataset
    prepare(spec, ws, args.threads)
    state: dict[str, Any] = {"dataset": args.dataset, "threads": args.threads, "cpu_flags": cpu_flags(),
                             "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "matmul_gflops": bf16_peak(), "rows": {}}
    t0 = time.time()
    for tower in TOWERS:
        for seed in args.seeds:
            for precision in ("fp32", "bf16"):
                key = f"{tower}-{precision}-{seed}"
                state["rows"][key] = run_row(ws, tower, precision, seed, spec.batch_size, args.threads)
                print(key, round(state["rows"][key]["test"]["kept"]["metrics"]["ndcg@10"], 4), flush=True)
            a, b = (ws / "runs" / f"precision-{tower}-{p}-{seed}" for p in ("fp32", "bf16"))
            state["rows"][f"{tower}-bf16-{seed}"]["vs_fp32"] = paired(a, b, "kept")
            OUT_JSON.write_text(json.dumps(state, indent=1) + "\n")
    state["seconds"] = round(time.time() - t0)
    OUT_JSON.write_text(json.dumps(state, indent=1) + "\n")
    OUT_MD.write_text(report(state) + "\n")


def rerender() -> None:
    """docs/precision.md from docs/precision.json (no training)."""
    OUT_MD.write_text(report(json.loads(OUT_JSON.read_text())) + "\n")


def report(state: dict[str, Any]) -> str:
    peak = state["matmul_gflops"]
    lines = ["# fp32 against bf16 autocast (SASRec)", "",
             f"Generated by `benchmarks/precision.py` (docs/precision.json). {state['dataset']}, {state['machine']}, "
             f"{state['threads']} torch threads, one job at a time; CPU flags {', '.join(state['cpu_flags']) or 'none'}; "
             f"2048² matmul peak bf16 {peak['bf16']:.0f} GFLOP/s, fp32 {peak['fp32']:.0f}. Losses are fp32 in both. "
             "recx's defaults otherwise (ID + text not whitened, history term on, patience 10). "
             "\"s / epoch\": training only, validation excluded.", "",
             "| tower | precision | seed | s / epoch | best epoch | s to best | test HR@10 | test NDCG@10 | bf16 - fp32, NDCG@10 (p) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, row in state["rows"].items():
        tower, precision, seed = key.rsplit("-", 2)
        m = row["test"]["kept"]["metrics"]
        vs = row.get("vs_fp32", {}).get("ndcg@10")
        cmp = "-" if vs is None else f"{vs['diff']:+.4f} ({vs['p_permutation']:.3f})"
        lines.append(f"| {tower} | {precision} | {seed} | {row['seconds_per_epoch']:.2f} | {row['best_epoch']} | {row['seconds_to_best']:.1f} | "
                     f"{m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {cmp} |")
    lines += ["", "Means over seeds:", "", "| tower | precision | s / epoch | s to best | test NDCG@10 (sd) |", "|---|---|---:|---:|---:|"]
    for tower in TOWERS:
        for precision in ("fp32", "bf16"):
            rows = [r for k, r in state["rows"].items() if k.startswith(f"{tower}-{precision}-")]
            if rows:
                nd = [r["test"]["kept"]["metrics"]["ndcg@10"] for r in rows]
                lines.append(f"| {tower} | {precision} | {np.mean([r['seconds_per_epoch'] for r in rows]):.2f} | "
                             f"{np.mean([r['seconds_to_best'] for r in rows]):.1f} | {np.mean(nd):.4f} ({np.std(nd, ddof=1) if len(nd) > 1 else 0:.4f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    rerender() if sys.argv[1:] == ["report"] else main()
