"""What encoding a training batch's users in length chunks saves: Reo-LM user tower, forward +
backward, on the real batches of a run's first epoch.

A batch's users are random prefixes of up to ``--user-items`` items, so one padded batch is
mostly padding; ``encode`` splits it into length-sorted chunks (recx/trainer/reolm/packing.py
``length_chunks``).  This times the user tower's forward and backward (a softmax over the run's
no-grad item table, as stage 2 trains) for the same batches with chunking off (one padded
batch) and at several chunk costs, interleaved batch by batch so that a change of machine load
hits every setting alike; prints tokens/s over real tokens and the padded share.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_chunks.py /tmp/reo/ws/runs/window --json docs/reolm_chunks.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_chunks.py /tmp/reo/ws/runs/window --json docs/reolm_chunks.json --amp off
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx, not an installed one

import torch  # noqa: E402

import recx.trainer.reolm.model as reolm_model  # noqa: E402
from recx.trainer import load_trained  # noqa: E402
from recx.trainer.data import SequenceBatches  # noqa: E402
from recx.trainer.reolm.packing import length_chunks  # noqa: E402

OFF = 10**9  # a chunk cost no split can beat: one padded batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a reo-lm run folder (its dataset, settings and best weights)")
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--costs", default="16,64,256", help="chunk costs in tokens to time against one padded batch")
    ap.add_argument("--amp", choices=["bf16", "off"], default="bf16", help="bf16 autocast, as `--precision auto` trains on a CPU with native bf16")
    ap.add_argument("--json", type=Path, help="write the record here")
    args = ap.parse_args()
    costs = [OFF, *map(int, args.costs.split(","))]

    model, cfg, ds = load_trained(args.run)
    model.train()
    with torch.no_grad():
        table = model.item_table().detach()  # [N+1, D], as stage 2's frozen table
    batches = SequenceBatches(ds.train_sequences(), cfg.model.max_len, cfg.optim.batch_size, cfg.run.seed)
    generator = torch.Generator().manual_seed(0)
    seconds = {c: 0.0 for c in costs}
    real = 0
    padded_chunked = {c: 0 for c in costs}
    for n, batch in enumerate(batches.epoch(0)):
        if n == args.batches:
            break
        inputs = model.training_batch(batch, generator).inputs  # [B, L'] one random prefix per row
        lengths = [len(p.input_ids) for p in model.pack_users([row[row > 0].tolist() for row in inputs])]
        real += sum(lengths)
        for cost in costs:
            padded_chunked[cost] += sum(max(lengths[i] for i in c) * len(c) for c in length_chunks(lengths, cost))
            reolm_model.CHUNK_COST_TOKENS = cost
            torch.manual_seed(n)
            model.zero_grad(set_to_none=True)
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp == "bf16"):
                users = model(inputs)[:, -1]  # [B, D]
            torch.logsumexp(users.float() @ table.T / 0.05, dim=-1).mean().backward()  # the loss in fp32
            seconds[cost] += time.perf_counter() - t
    rows = [
        {"chunk_cost": None if c == OFF else c, "seconds": seconds[c], "tokens_per_s": real / seconds[c],
         "real_share_of_padded": real / padded_chunked[c], "speedup": seconds[OFF] / seconds[c]}
        for c in costs
    ]
    record = {"run": str(args.run), "batches": args.batches, "batch_size": cfg.optim.batch_size, "real_tokens": real, "padded_tokens": padded_chunked[OFF],
              "amp": args.amp, "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "rows": rows}
    print(f"{args.batches} batches of {cfg.optim.batch_size} users, amp {args.amp}, {torch.get_num_threads()} thread(s)")
    print("| chunk cost (tokens) | real share of encoded tokens | tokens/s | speedup |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {'off (one padded batch)' if r['chunk_cost'] is None else r['chunk_cost']} | {r['real_share_of_padded']:.1%} | {r['tokens_per_s']:.0f} | {r['speedup']:.2f}x |")
    if args.json:  # one record per --amp: a call replaces its own and keeps the other
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        args.json.write_text(json.dumps({**old, args.amp: record}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
