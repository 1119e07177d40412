"""recx's side of benchmarks/train_vs_recbole.py at several user batch sizes and seeds: epochs
and seconds to the best valid NDCG@10, and the test NDCG@10 of that checkpoint.

The ratio to RecBole's time to best is held down by recx's epochs to best (18 against 7): a
recx batch of 256 users holds about 1,000 target positions (every position of each user), a
RecBole batch 256 prefixes, so recx makes a quarter of the updates per epoch.  Smaller user
batches make more updates per epoch; this measures what they cost in accuracy.  The runs are the
comparison's own (``train_vs_recbole.run_recx``: same model, loss, learning rate, patience,
fp32), one after the other, so a change of machine load hits them in turn.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recx_batch_size.py --batch-sizes 256,128 --seeds 42,1,2 --threads 1 --json docs/train_batch_size.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _recbole_env import shared_data_dir  # noqa: E402
from train_vs_recbole import loadavg, run_recx  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_data_dir() / "amazon-scientific", help="UniSRec amazon-scientific folder")
    p.add_argument("--batch-sizes", default="256,128", help="recx users per batch, comma-separated")
    p.add_argument("--seeds", default="42,1,2", help="comma-separated (42: recx's default)")
    p.add_argument("--epochs-cap", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--json", type=Path, default=None, help="write the record here")
    args = p.parse_args(argv)
    runs = []
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load_before = loadavg()
    for batch_size in map(int, args.batch_sizes.split(",")):
        for seed in map(int, args.seeds.split(",")):
            with tempfile.TemporaryDirectory(prefix="recx-batch-size-") as tmp:
                r = run_recx(args.data, Path(tmp), args.epochs_cap, batch_size, args.threads, 0.0, seed)
            s = r["summary"]
            runs.append({"batch_size": batch_size, "seed": seed, "epochs_to_best": s["epochs_to_best"], "time_to_best": s["time_to_best"],
                         "seconds_per_epoch": s["seconds_per_epoch"], "valid_seconds_per_epoch": s["valid_seconds_per_epoch"],
                         "best_valid_ndcg@10": max(e["valid"]["ndcg@10"] for e in r["epochs"]), "test": r["test"]})
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print("| users per batch | seed | epochs to best | s / epoch | time to best (s) | test NDCG@10 |\n|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['batch_size']} | {r['seed']} | {r['epochs_to_best']} | {r['seconds_per_epoch']:.2f} | {r['time_to_best']:.1f} | {r['test']['ndcg@10']:.4f} |")
    for b in dict.fromkeys(r["batch_size"] for r in runs):
        mine = [r for r in runs if r["batch_size"] == b]
        print(f"| {b} | mean | {statistics.mean(r['epochs_to_best'] for r in mine):.1f} | {statistics.mean(r['seconds_per_epoch'] for r in mine):.2f} | "
              f"{statistics.mean(r['time_to_best'] for r in mine):.1f} | {statistics.mean(r['test']['ndcg@10'] for r in mine):.4f} |")
    record = {"command": "python benchmarks/recx_batch_size.py " + " ".join(argv if argv is not None else sys.argv[1:]), "started_utc": started,
              "machine": {"nproc": os.cpu_count(), "machine": platform.machine(), "threads": args.threads, "load_before": load_before,
                          "load_after": loadavg()}, "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
