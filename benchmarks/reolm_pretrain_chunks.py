"""What length chunks save in a `recx pretrain` step: next item + 0.1 x masked tokens over the
packed user sequence, forward + backward, with chunking off (one padded batch of users) and on.

Pre-training reads every token's state of the user sequence (for its masked tokens), so it
runs the users through ``ReoLM.hidden_in_chunks``; the item side was chunked before (``encode``).
Settings are benchmarks/reolm.py's pre-training recipe (attribute text, 9 items a user,
batches of 32); the same batches, masks and seeds for both settings, interleaved step by step so
a change of machine load hits both alike.  Tokens/s counts every real token encoded (users and items).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_pretrain_chunks.py /tmp/reo/sci --json docs/reolm_pretrain_chunks.json
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
from recx.device import autocast_dtype  # noqa: E402
from recx.trainer.data import SequenceBatches  # noqa: E402
from recx.trainer.engine import seed_everything  # noqa: E402
from recx.trainer.reolm.backbone import load_backbone, load_tokenizer, locate_backbone, tokenizer_hash  # noqa: E402
from recx.trainer.reolm.pretrain import PretrainConfig, load_domains, make_pretrainer  # noqa: E402

OFF = 10**9  # a chunk cost no split can beat: one padded batch
RECIPE = dict(item_text="attributes", attr_tokens=32, user_items=9, max_len=9, batch_size=32, mlm_weight=0.1)  # benchmarks/reolm.py PRETRAIN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("domains", type=Path, nargs="+", help="recx dataset folders to pre-train over")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--precision", default="auto", help="as `recx pretrain --precision` (auto: bf16 autocast where the CPU has it natively)")
    ap.add_argument("--json", type=Path, help="write the record here")
    args = ap.parse_args()
    cfg = PretrainConfig(domains=[str(d) for d in args.domains], precision=args.precision, **RECIPE)
    seed_everything(cfg.seed)
    folder = locate_backbone(cfg.lm)
    tokenizer = load_tokenizer(folder)
    domains = load_domains(cfg, tokenizer, tokenizer_hash(tokenizer))
    model, _ = make_pretrainer(cfg, folder, tokenizer, load_backbone(folder), domains)
    model.train()
    amp = autocast_dtype(cfg.precision, torch.device("cpu"))
    batches = SequenceBatches(domains.train_sequences, cfg.max_len, cfg.batch_size, seed=0)
    seconds = {OFF: 0.0, reolm_model.CHUNK_COST_TOKENS: 0.0}
    real = 0
    for n, batch in enumerate(batches.epoch(0)):
        if n == args.steps:
            break
        for cost in seconds:
            reolm_model.CHUNK_COST_TOKENS = cost
            torch.manual_seed(n)  # the same dropout draws for both settings
            model.zero_grad(set_to_none=True)
            before = model.lm.tokens_seen
            t = time.perf_counter()
            loss, _ = model(batch, torch.Generator().manual_seed(n), amp)
            loss.backward()
            seconds[cost] += time.perf_counter() - t
        real += model.lm.tokens_seen - before  # the last setting's count (the same tokens in both)
    chunked = [c for c in seconds if c != OFF][0]
    record = {"domains": [str(d) for d in args.domains], "steps": args.steps, "recipe": RECIPE, "amp": str(amp), "chunk_cost": chunked,
              "seconds": {"one padded batch": seconds[OFF], "length chunks": seconds[chunked]},
              "tokens_per_s": {"one padded batch": real / seconds[OFF], "length chunks": real / seconds[chunked]},
              "speedup": seconds[OFF] / seconds[chunked], "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(f"{args.steps} pre-training steps of {cfg.batch_size} users, autocast {amp}, {torch.get_num_threads()} thread(s), {real} tokens encoded:")
    for name, s in record["seconds"].items():
        print(f"  {name}: {s:.1f} s, {real / s:.0f} tokens/s")
    print(f"  speedup {record['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
