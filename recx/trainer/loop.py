"""The training loop: seq2seq epochs, validation, early stopping, checkpoints, exact resume.

Exact resume: an epoch's computation depends only on the state saved at the end of the
previous epoch (weights, optimizer, scheduler, the losses' samplers, torch's RNG, and the data
order, which is a function of (seed, epoch)).  ``last.pt`` holds all of it, so a run killed at
any point and resumed with ``resume=True`` ends with the same weights and metrics as one that
was never interrupted.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recx.artifacts import atomic_write, torch_save
from recx.data.dataset import SequenceDataset
from recx.device import autocast, autocast_dtype
from recx.distributed import DistContext, join
from recx.errors import warn
from recx.evaluate.metrics import metrics_from_ranks
from recx.evaluate.retrieval import ranks_matmul
from recx.trainer.checkpoint import (
    BEST,
    CURVE,
    FINISHED,
    LAST,
    RUN_FORMAT,
    RunError,
    check_run_inputs,
    load_checkpoint,
    mark_finished,
    read_metrics,
    read_run_config,
    saved_options,
    store_digests,
    write_metrics,
    write_run_config,
)
from recx.trainer.config import TrainConfig
from recx.trainer.data import SequenceBatches
from recx.trainer.encoder_towers import StepMemo
from recx.trainer.losses import build_loss
from recx.trainer.model import SequentialRecommender, build_model, encoder_parameters
from recx.trainer.warm_start import warm_start
from recx.workspace import run_finished


class TrainStep(torch.nn.Module):
    """Model + loss in one forward, so DDP sees every parameter use (tower calls from the loss too)."""

    def __init__(self, model: SequentialRecommender, loss_fn: torch.nn.Module):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch, amp_dtype: torch.dtype | None) -> torch.Tensor:
        device = batch.inputs.device
        tower = self.model.tower
        items = StepMemo(tower) if getattr(tower, "expensive", False) else tower
        with autocast(device, amp_dtype):
            if isinstance(items, StepMemo):  # inputs and targets: every item the loss can ask for
                items.prefetch(batch.inputs, batch.targets)
            states = self.model(batch.inputs, batch.masked, items)
        return self.loss_fn(states.float(), batch, items)


@dataclass
class FitResult:
    run_dir: Path
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    train_seconds: float


def default_run_name(cfg: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{cfg.model}-{cfg.item_tower.replace('+', '_')}-{cfg.loss}"


def loss_scale(n: int, global_n: int, world_size: int, reference: float | None) -> float:
    """Factor on one rank's mean loss over its ``n`` target positions before ``backward``.

    DDP averages gradients over ranks, so the step's gradient is that of
    ``sum_r scale_r * mean_r / world_size``.  With ``reference`` None every step is the mean over
    its ``global_n`` positions (each batch weighs the same); with ``reference`` (the epoch's
    average positions per step) the step is ``sum of position losses / reference``, so every
    position weighs the same over the epoch however the batches group long and short rows.
    """
    return n * world_size / (global_n if reference is None else reference)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with groups: biases, norms and 1-d parameters get no weight decay; pretrained
    encoder blocks (topk / e2e towers) get ``encoder_lr`` and ``encoder_weight_decay``."""
    encoder_ids = encoder_parameters(model)
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (id(p) in encoder_ids, p.dim() < 2 or name.endswith(".bias"))
            groups.setdefault(key, []).append(p)
    param_groups = []
    for (is_encoder, no_decay), params in sorted(groups.items()):
        wd = 0.0 if no_decay else (cfg.encoder_weight_decay if is_encoder else cfg.weight_decay)
        param_groups.append({"params": params, "weight_decay": wd, "lr": cfg.encoder_lr if is_encoder else cfg.lr})
    return torch.optim.AdamW(param_groups, lr=cfg.lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = cfg.warmup_steps

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def evaluate_split(
    model: SequentialRecommender,
    dataset: SequenceDataset,
    split: str,
    cfg: TrainConfig,
    ks: tuple[int, ...] = (10,),
    exclude_history: bool = False,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Full-catalog HR@K / NDCG@K / MRR of ``split`` (valid or test); ranks by exact scores."""
    model.eval()
    device = next(model.parameters()).device
    histories, targets = dataset.split(split)
    table = model.item_table().float()  # [N+1, D]
    # one call over the whole split: user_vectors sorts by history length globally, so its
    # batches of short histories are trimmed (per chunk, every chunk would hold a long one);
    # history items are rows of this table, as in `recx eval`, so a topk / e2e tower runs once
    # per item instead of once per history position
    users = model.user_vectors(histories, cfg.max_len, cfg.eval_batch_size, lambda: autocast(device, amp_dtype), table=table)  # [U, D]
    ranks = ranks_matmul(users.cpu().numpy(), table.cpu().numpy(), targets, histories if exclude_history else None, device=str(device))
    return metrics_from_ranks(ranks, ks)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plot_curve(run_dir: Path, rows: list[dict[str, Any]], metric: str) -> None:
    """Training loss and validation metric per epoch -> curve.png."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(6, 3.5))
    ax1.plot(epochs, [r["loss"] for r in rows], color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [r["valid"][metric] for r in rows], color="tab:orange", label=f"valid {metric}")
    ax2.set_ylabel(f"valid {metric}", color="tab:orange")
    ax1.set_title(run_dir.name, fontsize=9)
    fig.tight_layout()
    try:
        atomic_write(run_dir / CURVE, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def fit(
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    max_epochs_this_call: int | None = None,
) -> FitResult:
    """Train ``cfg`` into ``run_dir`` (default ``cfg.runs_dir/<name>``).

    Args:
        resume: continue the run in ``run_dir`` from its ``last.pt``.
        max_epochs_this_call: stop after this many epochs (the run stays resumable); used by
            tests to interrupt a run deterministically.
    """
    cfg.validate()
    if run_dir is None:
        cfg.name = cfg.name or default_run_name(cfg)
        run_dir = Path(cfg.runs_dir) / cfg.name
    run_dir = Path(run_dir)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    ctx = join(cfg.device)

    dataset = SequenceDataset(cfg.dataset)
    digests = store_digests(cfg)
    if resume:
        check_run_inputs(run_dir, read_run_config(run_dir), dataset, digests)
    elif run_dir.exists() and any(run_dir.iterdir()) and ctx.is_main:
        raise RunError(f"{run_dir}: run directory exists; resume it with --resume {run_dir} or choose another --name")
    ctx.barrier()

    model = build_model(cfg, dataset)  # before the run dir exists: a run that cannot start leaves nothing behind
    if cfg.warm_start and not resume:  # a resumed run's last.pt already holds the warm-started weights
        seeded = warm_start(model, cfg.warm_start, dataset.fingerprint)
        if ctx.is_main:
            print(f"warm start from {seeded.source}: {len(seeded.loaded)} weights loaded; kept as built (not in the source): {', '.join(seeded.fresh) or 'none'}", file=sys.stderr)
    created = ctx.is_main and not run_dir.exists()
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / FINISHED).unlink(missing_ok=True)  # a resumed run that trains on is unfinished until it ends
        write_run_config(run_dir, {**cfg.to_dict(), "dataset_fingerprint": dataset.fingerprint, "num_items": dataset.num_items,
                                   "world_size": ctx.world_size, "run_format": RUN_FORMAT, "store_digests": digests})
    try:
        return _train(cfg, run_dir, resume, progress, max_epochs_this_call, ctx, model, dataset)
    except BaseException:
        if created and not (run_dir / LAST).is_file():  # failed or interrupted before its first epoch ended
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, progress: bool, max_epochs_this_call: int | None,
           ctx: DistContext, model: SequentialRecommender, dataset: SequenceDataset) -> FitResult:
    """The epochs of :func:`fit` in an existing run dir: resume state, train, validate, checkpoint."""
    device = ctx.device
    amp_dtype = autocast_dtype(cfg.amp, device)
    model = model.to(device)
    batches = SequenceBatches(dataset.train_sequences(), cfg.max_len, cfg.batch_size, cfg.seed, ctx.rank, ctx.world_size)
    counts = torch.from_numpy(dataset.item_popularity())
    loss_fn = build_loss(cfg, counts, lambda rows: batches.item_mask(rows, dataset.num_items).to(device), ctx.gather_ids if ctx.enabled else None, ctx.rank).to(device)
    step_module: torch.nn.Module = TrainStep(model, loss_fn)
    if ctx.enabled:
        step_module = torch.nn.parallel.DistributedDataParallel(step_module, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg)
    reference = None if cfg.loss_weighting == "batch" else model.targets_per_step(batches, cfg)
    scheduler = make_scheduler(optimizer, cfg, batches.num_batches())

    # fp16 gradients underflow without loss scaling; for fp32 and bf16 the scaler is a no-op
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    mask_generator = torch.Generator().manual_seed(cfg.seed + 1)  # BERT4Rec cloze masks
    start_epoch, best_value, best_epoch, bad_epochs, stopped = 0, -math.inf, -1, 0, False
    history: list[dict[str, Any]] = []
    if resume and (run_dir / LAST).is_file():
        state = load_checkpoint(run_dir / LAST)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:  # runs from before the scaler was saved trained without fp16
            scaler.load_state_dict(state["scaler"])
        loss_fn.load_state_dict(state["loss"])
        _set_rng_state(state["rng"])
        mask_generator.set_state(state["mask_generator"])
        start_epoch, best_value, best_epoch, bad_epochs = state["epoch"] + 1, state["best_value"], state["best_epoch"], state["bad_epochs"]
        history = [r for r in read_metrics(run_dir) if r["epoch"] < start_epoch]
        if state.get("stopped"):
            start_epoch, stopped = cfg.epochs, True  # early stopping already ended this run
    if ctx.is_main:
        write_metrics(run_dir, history)

    train_seconds = sum(r["seconds"] for r in history)
    epochs_done = 0
    for epoch in range(start_epoch, cfg.epochs):
        if max_epochs_this_call is not None and epochs_done >= max_epochs_this_call:
            break
        model.train()
        t0 = time.perf_counter()
        total, positions = 0.0, 0
        bar = tqdm(batches.epoch(epoch), total=batches.num_batches(), desc=f"epoch {epoch}", disable=not (progress and ctx.is_main and sys.stderr.isatty()), leave=False, unit="batch")
        for batch in bar:
            batch = model.training_batch(type(batch)(*(None if t is None else t.to(device) for t in batch)), mask_generator)
            loss = step_module(batch, amp_dtype)
            n = int((batch.targets > 0).sum())
            scale = loss_scale(n, ctx.global_count(n) if reference is None else n, ctx.world_size, reference)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss * scale).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
            scaler.update()
            scheduler.step()
            value = loss.item()
            if not math.isfinite(value):
                raise RunError(f"{run_dir}: training diverged in epoch {epoch}, step {bar.n}: the loss is {value}; train again with "
                               f"a lower --lr (now {cfg.lr:g}), --grad-clip 1 (now {cfg.grad_clip:g}) or --amp off (now {cfg.amp})")
            total, positions = total + value * n, positions + n
            bar.set_postfix(loss=f"{total / max(positions, 1):.4f}", pos_s=f"{positions / (time.perf_counter() - t0):.0f}")
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        epochs_done += 1
        if not ctx.is_main:  # rank 0 evaluates once and decides; the others follow
            stopped = ctx.broadcast_flag(False)
            if stopped:
                break
            continue
        valid = evaluate_split(model, dataset, "valid", cfg, ks=_ks_for(cfg.metric), amp_dtype=amp_dtype)
        value = valid[cfg.metric]
        improved = value > best_value
        if improved:
            best_value, best_epoch, bad_epochs = value, epoch, 0
            torch_save({"model": model.state_dict(), "epoch": epoch, "valid": valid, "config": cfg.to_dict()}, run_dir / BEST)
        else:
            bad_epochs += 1
        stopped = bad_epochs >= cfg.patience
        row = {"epoch": epoch, "loss": total / max(positions, 1), "seconds": seconds, "positions_per_s": positions / seconds, "valid": valid, "best": improved}
        if hasattr(model, "epoch_stats"):  # model-specific throughput (reo-lm: tokens/s)
            row.update(model.epoch_stats(seconds))
        history.append(row)
        write_metrics(run_dir, history)
        torch_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "loss": loss_fn.state_dict(),
                "rng": _rng_state(),
                "mask_generator": mask_generator.get_state(),
                "epoch": epoch,
                "best_value": best_value,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "stopped": stopped,
            },
            run_dir / LAST,
        )
        if progress:
            tqdm.write(f"epoch {epoch:3d}  loss {row['loss']:.4f}  valid {cfg.metric} {value:.4f}{'  *' if improved else ''}  ({seconds:.1f}s)")
        if ctx.broadcast_flag(stopped):
            break
    ctx.barrier()
    if ctx.is_main:
        plot_curve(run_dir, history, cfg.metric)
        if stopped or (history[-1]["epoch"] + 1 if history else start_epoch) >= cfg.epochs:
            mark_finished(run_dir, {"best_epoch": best_epoch, "epochs_run": len(history), "stopped_early": bool(stopped)})
    best_valid = next((r["valid"] for r in history if r["epoch"] == best_epoch), {})
    return FitResult(run_dir, best_epoch, best_valid, len(history), train_seconds)


def _ks_for(metric: str) -> tuple[int, ...]:
    ks = {10}
    if "@" in metric:
        ks.add(int(metric.split("@")[1]))
    return tuple(sorted(ks))


def load_trained(run_dir: str | Path, checkpoint: str = BEST) -> tuple[SequentialRecommender, TrainConfig, SequenceDataset]:
    """(model in eval mode with the checkpoint's weights, its config, its dataset)."""
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    cfg = TrainConfig.from_dict(saved_options(run_dir), source=str(run_dir / "config.json"))
    dataset = SequenceDataset(cfg.dataset)
    check_run_inputs(run_dir, saved, dataset, store_digests(cfg))
    if not run_finished(run_dir):
        last = read_metrics(run_dir)
        warn(f"{run_dir}: training did not finish (interrupted after {len(last)} of {cfg.epochs} epochs); using its "
             f"{checkpoint} as it is; `recx train --resume {run_dir}` continues it")
    # the run's checkpoint holds every weight: a reo-lm run does not need its --init dir any more
    model = build_model(dataclasses.replace(cfg, init="") if cfg.init else cfg, dataset)
    state = load_checkpoint(run_dir / checkpoint)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line or "Missing" in line or "Unexpected" in line), str(e)[:200])
        raise RunError(f"{run_dir / checkpoint}: does not fit this run's model ({detail.rstrip('.')}); "
                       "was it copied from another run?") from None
    return model.eval(), cfg, dataset
