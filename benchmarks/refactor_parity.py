"""Before/after check of a trainer refactor: the same SASRec and Reo-LM runs on two code trees.

Runs, in the tree this file is imported from (``--tree``: a checkout of recx, e.g. a
``git worktree`` of the commit before the change, or this repository):

1. SASRec ID, full-softmax CE, the exact recx side of benchmarks/train_vs_recbole.py
   (amazon-scientific, hidden 64, batch 256, early stopping 10, fp32): seconds per epoch,
   epochs and time to the best valid NDCG@10, test NDCG@10 / HR@10.
2. A Reo-LM smoke run: all-MiniLM-L6-v2 as both towers on ml-100k (text), 1 epoch, batch 32,
   16 tokens per item, 64 per user, fp32: train seconds, tokens/s, valid and test NDCG@10.

Usage (one tree at a time, nothing else running)::

    git worktree add /tmp/recx-before <commit>
    PYTHONPATH=/tmp/recx-before python benchmarks/refactor_parity.py --tree /tmp/recx-before --json docs/refactor_parity/before.json
    python benchmarks/refactor_parity.py --tree . --json docs/refactor_parity/after.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def make_config(**options: Any) -> Any:
    """A TrainConfig from flat options in either tree (before the nested config: the
    dataclass itself, with --amp for precision)."""
    from recx.trainer.config import TrainConfig

    if hasattr(TrainConfig, "from_options"):
        return TrainConfig.from_options(**options)
    options["amp"] = {"fp32": "off"}.get(options.pop("precision"), "auto")
    return TrainConfig(**options)


def reolm_smoke(data: Path, work: Path) -> dict[str, Any]:
    import torch

    from recx.data.importers.movielens import import_movielens
    from recx.trainer import fit, load_trained
    from recx.trainer.loop import evaluate_split

    ds_dir = work / "ml-100k"
    import_movielens(data, ds_dir)
    cfg = make_config(dataset=str(ds_dir), model="reo-lm", lm="all-MiniLM-L6-v2", item_tokens=16, user_tokens=64, max_len=8,
                      temperature=0.05, epochs=1, batch_size=32, lr=1e-3, encoder_lr=5e-5, precision="fp32", device="cpu",
                      name="reolm", runs_dir=str(work / "runs"), seed=42)
    t = time.perf_counter()
    result = fit(cfg, progress=False)
    wall = time.perf_counter() - t
    row = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    model, cfg_loaded, ds = load_trained(result.run_dir)
    torch.manual_seed(0)
    test = evaluate_split(model, ds, "test", cfg_loaded, ks=(10,))
    return {"fit_wall_seconds": wall, "train_seconds": row["seconds"], "loss": row["loss"], "tokens_per_s": row.get("tokens_per_s"),
            "valid": row["valid"], "test": test}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, required=True, help="the recx checkout to measure (must be first on PYTHONPATH)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--skip-sasrec", action="store_true")
    args = ap.parse_args()
    import recx

    assert Path(recx.__file__).resolve().parent.parent == args.tree.resolve(), f"recx imported from {recx.__file__}, not {args.tree}"
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("RECX_CPU_BF16", "off")
    sys.path.insert(0, str(args.tree.resolve() / "benchmarks"))  # that tree's own recx side of the benchmark
    import train_vs_recbole

    out: dict[str, Any] = {"tree": os.path.relpath(args.tree.resolve(), Path.cwd()), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_sasrec:
            rx = train_vs_recbole.run_recx(args.data / "amazon-scientific", work / "sasrec", 200, 256, args.threads, 0.0)
            out["sasrec"] = {"summary": rx["summary"], "test": rx["test"], "best_valid": next(r["valid"] for r in rx["epochs"] if r["epoch"] == rx["best_epoch"])}
            print("sasrec", json.dumps(out["sasrec"]), flush=True)
        out["reolm"] = reolm_smoke(args.data / "ml-100k", work / "reolm")
        print("reolm", json.dumps(out["reolm"]), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
