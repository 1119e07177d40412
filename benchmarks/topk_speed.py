"""Seconds per training step (and per epoch, extrapolated) of the tuned-block tower against
the frozen-store tower it refines, on one workspace.

Each measured step is a real `recx train` step (``TrainStep`` forward, backward, clipping,
AdamW) on a batch of epoch 0.  The steps are spread evenly over the epoch, so short and long
users are both represented, and the epoch time is the mean step time x steps per epoch.
Because it uses only the trainer's public pieces, the same script times an older checkout:
run it with ``PYTHONPATH=<checkout>`` to get the "before" column.

    .venv/bin/python benchmarks/topk_speed.py --workspace /tmp/sci --topk-store stores/minilm-top1.h5 \
        --steps 6 --json /tmp/topk-after.json

The workspace needs a dataset (`recx data import ...`) and a store made with
`recx featurize --model minilm --cache-top-k 1`.  Image encoders the same way, with the whole
encoder in the step (``e2e``, the cost without a trunk cache) as a third tower:

    .venv/bin/python benchmarks/topk_speed.py --workspace /tmp/recx-study/ml-100k --modality image \
        --topk-store stores/efficientnet-lite0-top1.h5 --towers image topk e2e --encoder efficientnet-lite0 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def time_tower(workspace: Path, tower: str, store: Path, steps: int, batch_size: int, precision: str, modality: str = "text", encoder: str = "") -> dict:
    import numpy as np
    import torch

    from recx.data.dataset import SequenceDataset
    from recx.device import autocast_dtype
    from recx.trainer.config import TrainConfig
    from recx.trainer.data import SequenceBatches
    from recx.trainer.losses import build_loss
    from recx.trainer.loop import TrainStep, make_optimizer
    from recx.trainer.registry import build_model

    # the frozen tower reads the embeddings of the --cache-top-k store (the same vectors as a plain store)
    part = "topk" if tower == "topk" else modality
    cfg = TrainConfig.from_options(dataset=str(workspace / "data"), item_tower=tower, stores={part: str(store)}, batch_size=batch_size, precision=precision,
                      encoder=encoder if tower == "e2e" else "", tune_blocks=1)
    torch.manual_seed(cfg.run.seed)
    dataset = SequenceDataset(cfg.run.dataset)
    t0 = time.perf_counter()
    model = build_model(cfg, dataset)
    build_seconds = time.perf_counter() - t0
    batches = SequenceBatches(dataset.train_sequences(), cfg.model.max_len, cfg.optim.batch_size, cfg.run.seed)
    loss_fn = build_loss(cfg, torch.from_numpy(dataset.item_popularity()), lambda rows: batches.item_mask(rows, dataset.num_items))
    step = TrainStep(model, loss_fn)
    optimizer = make_optimizer(model, cfg)
    amp_dtype = autocast_dtype(cfg.run.precision, torch.device("cpu"))
    epoch = list(batches.epoch(0))
    picks = np.linspace(0, len(epoch) - 1, steps + 1).round().astype(int)  # first one is a warm-up
    generator = torch.Generator().manual_seed(0)
    seconds, items = [], []
    model.train()
    for i, idx in enumerate(picks):
        batch = model.training_batch(epoch[idx], generator)
        t = time.perf_counter()
        loss = step(batch, amp_dtype)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        if i:
            seconds.append(time.perf_counter() - t)
            ids = torch.unique(torch.cat([batch.inputs.reshape(-1), batch.targets.reshape(-1)]))
            items.append(int((ids > 0).sum()))
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        model.item_table()
    table_seconds = time.perf_counter() - t
    per_step = float(np.mean(seconds))
    return {
        "tower": tower, "steps_timed": len(seconds), "seconds_per_step": per_step, "steps_per_epoch": len(epoch),
        "seconds_per_epoch": per_step * len(epoch), "item_table_seconds": table_seconds, "distinct_items_per_step": float(np.mean(items)),
        "model_build_seconds": build_seconds, "amp": str(amp_dtype),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--topk-store", type=Path, required=True, help="a store featurized with --cache-top-k 1 (relative to the workspace)")
    ap.add_argument("--modality", default="text", choices=["text", "image"], help="the frozen tower's store kind")
    ap.add_argument("--towers", nargs="*", default=["text", "topk"], help="item towers to time: the modality, topk, e2e")
    ap.add_argument("--encoder", default="", help="e2e: the encoder to tune (registry name), e.g. efficientnet-lite0")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    import recx

    store = args.topk_store if args.topk_store.is_absolute() else args.workspace / args.topk_store
    rows = [time_tower(args.workspace, t, store, args.steps, args.batch_size, args.precision, args.modality, args.encoder) for t in args.towers]
    report = {
        "recx": str(Path(recx.__file__).parent), "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(), "rows": rows,
    }
    for r in rows:
        print(f"{r['tower']:>5}: {r['seconds_per_step']:.2f} s/step x {r['steps_per_epoch']} = {r['seconds_per_epoch']:.0f} s/epoch "
              f"({r['distinct_items_per_step']:.0f} items/step, table {r['item_table_seconds']:.1f} s, {r['amp']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
