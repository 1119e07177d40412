"""Forward + backward of the training losses' softmax cross-entropy: torch's F.cross_entropy
against recx's softmax_cross_entropy (recx/trainer/losses/softmax.py), interleaved round by
round on the same logits, median of the rounds.  The default shape is one SASRec full-softmax
step on amazon-scientific (256 users: about 1,032 target positions x 4,385 items).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/softmax_ce_speed.py --json docs/softmax_ce_speed.json
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
    fns = {"F.cross_entropy": F.cross_entropy, "softmax_cross_entropy": softmax_cross_entropy}
    ms: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            x = logits.clone().requires_grad_()
            t = time.perf_counter()
            fn(x, targets).backward()
            ms[name].append((time.perf_counter() - t) * 1e3)
    median = {name: statistics.median(v) for name, v in ms.items()}
    print(f"[{args.rows} x {args.columns}] fp32, {torch.get_num_threads()} thread(s), median of {args.rounds} rounds, forward + backward:")
    for name, m in median.items():
        print(f"  {name}: {m:.2f} ms")
    print(f"  saved: {1 - median['softmax_cross_entropy'] / median['F.cross_entropy']:.0%}")
    if args.json:
        args.json.write_text(json.dumps({"shape": [args.rows, args.columns], "threads": torch.get_num_threads(), "rounds": args.rounds,
                                         "median_ms": median, "machine": platform.machine(), "torch": torch.__version__,
                                         "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}, indent=1) + "\n")


if __name__ == "__main__":
    main()
