"""What each `--reo-tuning` costs per training step: MiniLM-L6 forward + backward + AdamW step.

Times full fine-tuning, the top block only (`topk`, --tune-blocks 1) and LoRA (rank 8 on every
block linear) on the same random batch, interleaved round by round so that a change of machine
load hits all three alike; prints tokens/s (median of the rounds) and trainable parameters.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_tuning_speed.py --batch 32 --tokens 48
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import recx  # noqa: F401  (the torchvision shim, before transformers / peft import it)


def build(mode: str):
    from recx.trainer.reolm.backbone import load_backbone, locate_backbone
    from recx.trainer.reolm.lora import apply_lora
    from recx.trainer.reolm.model import freeze_below_top

    model = load_backbone(locate_backbone("all-MiniLM-L6-v2")).train()
    model.pooler.requires_grad_(False)
    if mode == "topk":
        freeze_below_top(model, 1)
    elif mode == "lora":
        apply_lora(model, rank=8, alpha=16)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--amp", choices=["bf16", "off"], default="bf16")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch, args.tokens))
    mask = torch.ones_like(ids)
    modes = ["full", "topk", "lora"]
    models = {m: build(m) for m in modes}
    opts = {m: torch.optim.AdamW([p for p in models[m].parameters() if p.requires_grad], lr=1e-4) for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds + 1):  # round 0 warms up
        for m in modes:
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp == "bf16"):
                out = models[m](input_ids=ids, attention_mask=mask).last_hidden_state
            out.float().mean().backward()
            opts[m].step()
            opts[m].zero_grad()
            if r:
                times[m].append(time.perf_counter() - t0)
    print(f"MiniLM-L6, batch {args.batch} x {args.tokens} tokens, amp {args.amp}, {torch.get_num_threads()} thread(s), median of {args.rounds} rounds")
    print("| tuning | trainable parameters | s/step | tokens/s | vs full |\n|---|---:|---:|---:|---:|")
    full = statistics.median(times["full"])
    for m in modes:
        s = statistics.median(times[m])
        n = sum(p.numel() for p in models[m].parameters() if p.requires_grad)
        print(f"| {m} | {n:,} | {s:.3f} | {args.batch * args.tokens / s:,.0f} | {full / s:.2f}x |")


if __name__ == "__main__":
    main()
