"""Forward + backward of the training losses' softmax cross-entropy, interleaved round by round
on the same inputs, median of the rounds.  The default shape is one SASRec full-softmax step on
amazon-scientific (256 users: about 1,032 target positions x 4,385 items, width 64).

- given the logits: torch's F.cross_entropy against recx's softmax_cross_entropy
  (recx/trainer/losses/softmax.py);
- from the states and the item table, both trained (the full softmax's whole loss, its matmuls
  included): the [P, C] logits then F.cross_entropy or softmax_cross_entropy, against
  linear_softmax_cross_entropy (recx/trainer/losses/linear_softmax.py, a block of rows at a time).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/softmax_ce_speed.py --json docs/softmax_ce_speed.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recx
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _timing import interleaved_median_ms, machine_record  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from recx.trainer.losses.linear_softmax import linear_softmax_cross_entropy  # noqa: E402
from recx.trainer.losses.similarity import similarity  # noqa: E402
from recx.trainer.losses.softmax import softmax_cross_entropy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1032)
    ap.add_argument("--columns", type=int, default=4385)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(args.rows, args.columns, generator=g)
    targets = torch.randint(0, args.columns, (args.rows,), generator=g)
    def step(fn):
        return lambda: fn(logits.clone().requires_grad_(), targets).backward()

    states = torch.randn(args.rows, args.width, generator=g) * 0.5
    table = torch.randn(args.columns, args.width, generator=g) * 0.5
    def whole(fn):
        return lambda s, v: fn(similarity(s, v, 0.0), targets)

    def from_vectors(fn):
        return lambda: fn(states.clone().requires_grad_(), table.clone().requires_grad_()).backward()

    groups = {
        "logits": interleaved_median_ms({"F.cross_entropy": step(F.cross_entropy), "softmax_cross_entropy": step(softmax_cross_entropy)}, args.rounds),
        "states_and_table": interleaved_median_ms({
            "logits + F.cross_entropy": from_vectors(whole(F.cross_entropy)),
            "logits + softmax_cross_entropy": from_vectors(whole(softmax_cross_entropy)),
            "linear_softmax_cross_entropy": from_vectors(lambda s, v: linear_softmax_cross_entropy(s, v, targets, 0.0))}, args.rounds),
    }
    print(f"[{args.rows} x {args.columns}], width {args.width}, fp32, {torch.get_num_threads()} thread(s), median of {args.rounds} rounds, forward + backward:")
    for group, median in groups.items():
        first = next(iter(median.values()))
        for name, m in median.items():
            print(f"  {group}: {name}: {m:.2f} ms ({m / first - 1:+.0%})")
    if args.json:
        args.json.write_text(json.dumps({"shape": [args.rows, args.columns], "width": args.width, "rounds": args.rounds,
                                         "median_ms": groups["logits"], "median_ms_from_states_and_table": groups["states_and_table"],
                                         **machine_record()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
