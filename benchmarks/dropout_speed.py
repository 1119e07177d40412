"""Forward + backward of dropout on CPU: torch's nn.Dropout against recx's Dropout
(recx/trainer/dropout.py), interleaved round by round on the same input, median of the rounds.
Shapes: a SASRec batch of 256 users at hidden 64 (hidden states [256, L, 64] and attention
weights [256, 2, L, L]) at two sequence lengths; p = 0.5, SASRec's default on these datasets.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dropout_speed.py --json docs/dropout_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recx

import torch  # noqa: E402
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
        ms: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(args.rounds):
            for name, module in modules.items():
                x.grad = None
                t = time.perf_counter()
                module(x).backward(upstream)
                ms[name].append((time.perf_counter() - t) * 1e3)
        median = {name: statistics.median(v) for name, v in ms.items()}
        results[label] = median
        print(f"  {label}: " + ", ".join(f"{name} {m:.2f} ms" for name, m in median.items())
              + f" ({median['nn.Dropout'] / median['recx Dropout']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"p": args.p, "threads": torch.get_num_threads(), "rounds": args.rounds, "median_ms": results,
                                         "machine": platform.machine(), "torch": torch.__version__,
                                         "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}, indent=1) + "\n")


if __name__ == "__main__":
    main()
