"""One training epoch of two recx checkouts, alternated: any recx run's saved config.json (e.g.
the recx run of benchmarks/train_vs_recbole.py: SASRec, full softmax, batch 256, fp32; or
`recx train`'s defaults, docs/train_epoch_ab_default_recipe.json), ``--epochs`` epochs per run, ``--rounds`` rounds of A then B, one process per run so each side
imports its own checkout.  Prints one line per run (training seconds per epoch, valid NDCG@10
per epoch) and, with ``--json``, the raw record and the median epoch over epochs 2.. of all rounds.

    git worktree add /tmp/recx-old 3896796
    W=/tmp/tvr10/work   # benchmarks/train_vs_recbole.py's --workdir: its recx run and dataset
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_epoch_ab.py /tmp/recx-old . --run-config $W/runs/sasrec-id-full_ce/config.json \\
        --dataset $W/recx-data --epochs 8 --rounds 3 --json docs/train_epoch_ab.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_RUN = """
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
import recx
assert recx.__file__.startswith(sys.argv[1]), recx.__file__
from recx.trainer.config import TrainConfig
from recx.trainer.loop import fit
torch.set_num_threads(1)
cfg = TrainConfig.from_dict(json.load(open(sys.argv[2]))["config"])
cfg.run.dataset, cfg.optim.epochs = sys.argv[3], int(sys.argv[4])
t = time.perf_counter()
fit(cfg, sys.argv[5], progress=False)
total = time.perf_counter() - t
rows = [json.loads(line) for line in open(sys.argv[5] + "/metrics.jsonl")]
print(json.dumps({"total_s": total, "epoch_s": [r["seconds"] for r in rows], "valid_ndcg@10": [r["valid"]["ndcg@10"] for r in rows]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="checkout A (e.g. a git worktree of the older commit)")
    ap.add_argument("b", type=Path, help="checkout B")
    ap.add_argument("--run-config", type=Path, required=True, help="a recx run's config.json")
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"a": [], "b": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for side, checkout in (("a", args.a), ("b", args.b)):
                out = Path(tmp) / side
                shutil.rmtree(out, ignore_errors=True)
                res = subprocess.run([sys.executable, "-c", ONE_RUN, str(checkout.resolve()), str(args.run_config), str(args.dataset), str(args.epochs), str(out)],
                                     check=True, capture_output=True, text=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                runs[side].append(row)
                print(side, f"total {row['total_s']:.2f} s, epochs", " ".join(f"{s:.2f}" for s in row["epoch_s"]), flush=True)
    median = {side: statistics.median(s for r in rows for s in r["epoch_s"][1:]) for side, rows in runs.items()}
    print(f"median epoch (epochs 2-{args.epochs}): A {median['a']:.2f} s, B {median['b']:.2f} s ({median['b'] / median['a'] - 1:+.0%})")
    if args.json:
        args.json.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "runs": runs, "median_epoch_s": median, "epochs": args.epochs,
                                         "rounds": args.rounds, "machine": platform.machine(),
                                         "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}, indent=1) + "\n")


if __name__ == "__main__":
    main()
