"""Forward + backward of the training losses' softmax cross-entropy: torch's F.cross_entropy
against recx's softmax_cross_entropy (recx/trainer/losses/softmax.py), interleaved round by
round on the same logits, median of the rounds.  The default shape is one SASRec full-softmax
step on amazon-scientific (256 users: about 1,032 target positions x 4,385 items).

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

from recx.trainer.losses.softmax import softmax_cross_entropy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1032)
    ap.add_argument("--columns", type=int, default=4385)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(args.rows, args.columns, generator=g)
    targets = torch.randint(0, args.columns, (args.rows,), generator=g)
    def step(fn):
        return lambda: fn(logits.clone().requires_grad_(), targets).backward()

    median = interleaved_median_ms({"F.cross_entropy": step(F.cross_entropy), "softmax_cross_entropy": step(softmax_cross_entropy)}, args.rounds)
    print(f"[{args.rows} x {args.columns}] fp32, {torch.get_num_threads()} thread(s), median of {args.rounds} rounds, forward + backward:")
    for name, m in median.items():
        print(f"  {name}: {m:.2f} ms")
    print(f"  saved: {1 - median['softmax_cross_entropy'] / median['F.cross_entropy']:.0%}")
    if args.json:
        args.json.write_text(json.dumps({"shape": [args.rows, args.columns], "rounds": args.rounds, "median_ms": median, **machine_record()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
