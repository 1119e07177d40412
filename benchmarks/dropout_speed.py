"""Forward + backward of dropout on CPU: torch's nn.Dropout against recx's Dropout
(recx/trainer/dropout.py), interleaved round by round on the same input, median of the rounds.
Shapes: a SASRec batch of 256 users at hidden 64 (hidden states [256, L, 64] and attention
weights [256, 2, L, L]) at two sequence lengths; p = 0.5, SASRec's default on these datasets.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dropout_speed.py --json docs/dropout_speed.json
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
from torch import nn  # noqa: E402

from recx.trainer.dropout import Dropout  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    shapes = {f"hidden [256, {L}, 64]": (256, L, 64) for L in (10, 50)} | {f"attention [256, 2, {L}, {L}]": (256, 2, L, L) for L in (10, 50)}
    modules = {"nn.Dropout": nn.Dropout(args.p), "recx Dropout": Dropout(args.p)}
    results = {}
    print(f"p = {args.p}, {torch.get_num_threads()} thread(s), median of {args.rounds} rounds, forward + backward:")
    for label, shape in shapes.items():
        x = torch.randn(shape, requires_grad=True)
        upstream = torch.randn(shape)

        def step(module, x=x, upstream=upstream):
            def run() -> None:
                x.grad = None
                module(x).backward(upstream)
            return run

        median = interleaved_median_ms({name: step(m) for name, m in modules.items()}, args.rounds)
        results[label] = median
        print(f"  {label}: " + ", ".join(f"{name} {m:.2f} ms" for name, m in median.items())
              + f" ({median['nn.Dropout'] / median['recx Dropout']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"p": args.p, "rounds": args.rounds, "median_ms": results, **machine_record()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
