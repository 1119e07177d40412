"""The one training loop: `recx train` and `recx pretrain` both run :func:`run_epochs`.

A :class:`Task` says what is trained (its model, batches, one step's loss, validation, the
files it writes); the loop owns everything else, once: AdamW groups, the learning-rate
schedule, precision and the fp16 GradScaler, gradient clipping, divergence checks, the
per-position loss weighting, DDP, early stopping, progress output, metrics.jsonl and exact
resume.

Exact resume: an epoch's computation depends only on the state saved at the end of the
previous epoch: weights, optimiser, schedule, scaler, and per rank the torch / numpy / CUDA
RNGs plus the task's own generators (cloze masks, negative samplers), which differ between
ranks.  Every rank's part is gathered into the one checkpoint, each rank restores its own,
and a different world size is refused, so a run killed at any point and resumed ends with the
weights and metrics of one that was never interrupted, under torchrun as in one process.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.autograd.graph import increment_version
from torch.profiler import record_function
from tqdm.auto import tqdm

from recx.artifacts import torch_save
from recx.device import autocast_dtype
from recx.distributed import DistContext
from recx.errors import RecxError
from recx.options import show_progress
from recx.trainer.checkpoint import load_checkpoint, read_metrics, write_metrics

STATE_FORMAT = 2  # 2: per-rank RNG states and world size; 1 (train's last.pt before): rank 0's only


class LoopError(RecxError):
    """Training cannot go on (diverged, or a checkpoint from another setup)."""


class Diverged(LoopError):
    """The loss became inf or NaN (a study counts such a trial as pruned, not as a failure)."""


@dataclass
class LoopSettings:
    """What the loop needs of a config (TrainConfig and PretrainConfig both give one)."""

    epochs: int
    lr: float
    weight_decay: float
    pretrained_lr: float  # parameters the model names as pretrained (encoder blocks, LM backbone)
    pretrained_weight_decay: float
    seed: int
    schedule: str = "constant"  # constant | cosine | linear, after warmup
    warmup_steps: int = 0
    grad_clip: float = 1.0
    precision: str = "auto"
    patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    metric: str = ""  # the validation metric early stopping watches
    steps_per_epoch: int = 0  # 0: every batch
    lr_hint: str = "--lr"  # how the command names its learning rate (in the divergence message)


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, the mean over this rank's ``positions`` targets
    positions: int
    parts: dict[str, float] = field(default_factory=dict)  # logged per epoch (mean over steps)


class Task:
    """What the loop trains.  Subclasses fill in the abstract parts; the rest are defaults."""

    model: nn.Module  # whose parameters the optimiser steps (and whose state is checkpointed)
    module: nn.Module  # the step's forward (model + loss), wrapped by DDP under torchrun

    def batches(self, epoch: int) -> Iterable[Any]:
        raise NotImplementedError

    def num_batches(self) -> int:
        raise NotImplementedError

    def step(self, module: nn.Module, batch: Any, amp_dtype: torch.dtype | None) -> StepOutput:
        """One batch's loss through ``module`` (the DDP wrapper of ``self.module`` when distributed)."""
        raise NotImplementedError

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return []

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups whose gradient norms are clipped each on its own (--grad-clip)."""
        return [list(self.model.parameters())]

    def reference_positions(self) -> float | None:
        """Average target positions per step: each position weighs the same over the epoch.
        None: every step is its own mean (each batch weighs the same)."""
        return None

    def validate(self, amp_dtype: torch.dtype | None) -> dict[str, float] | None:
        """Validation metrics after an epoch (rank 0 only); None: no validation."""
        return None

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        return {}

    def rank_state(self) -> dict[str, Any]:
        """This rank's own random state beyond torch's and numpy's (generators, samplers)."""
        return {}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        """Rank 0, after each epoch: write the task's own files (best weights, exports)."""

    def after_checkpoint(self, epoch: int, row: dict[str, Any]) -> None:
        """Rank 0, after the interval's metrics and checkpoint are written (the run can resume from it)."""


@dataclass
class LoopResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float
    stopped_early: bool
    epochs_done: int  # epochs run in this call
    train_seconds: float
    finished: bool  # every epoch run, or stopped early


def loss_scale(n: int, global_n: int, world_size: int, reference: float | None) -> float:
    """Factor on one rank's mean loss over its ``n`` target positions before ``backward``.

    DDP averages gradients over ranks, so the step's gradient is that of
    ``sum_r scale_r * mean_r / world_size``.  With ``reference`` None every step is the mean over
    its ``global_n`` positions (each batch weighs the same); with ``reference`` (the epoch's
    average positions per step) the step is ``sum of position losses / reference``, so every
    position weighs the same over the epoch however the batches group long and short rows.
    """
    return n * world_size / (global_n if reference is None else reference)


def adamw(model: nn.Module, pretrained: list[nn.Parameter], s: LoopSettings) -> torch.optim.Optimizer:
    """AdamW with groups: biases, norms and other 1-d parameters get no weight decay; the
    ``pretrained`` parameters get ``pretrained_lr`` and ``pretrained_weight_decay``."""
    pretrained_ids = {id(p) for p in pretrained}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (id(p) in pretrained_ids, p.dim() < 2 or name.endswith(".bias"))
            groups.setdefault(key, []).append(p)
    param_groups = []
    for (is_pretrained, no_decay), params in sorted(groups.items()):
        wd = 0.0 if no_decay else (s.pretrained_weight_decay if is_pretrained else s.weight_decay)
        param_groups.append({"params": params, "weight_decay": wd, "lr": s.pretrained_lr if is_pretrained else s.lr})
    # the fused kernel updates every row of a table in one pass: at a 1M-row ID table it steps in
    # 68 ms against 658 ms for the per-tensor loop (one thread; docs/scale.md)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in param_groups for p in g["params"])
    optimizer = torch.optim.AdamW(param_groups, lr=s.lr, fused=fused)
    if fused:
        # the fused kernel writes parameters without bumping their autograd version counters, and
        # caches keyed on those counters (Reo-LM's item table) must see that the weights changed
        params = [p for g in param_groups for p in g["params"]]
        optimizer.register_step_post_hook(lambda *_: increment_version(params))
    return optimizer


def lr_factor(s: LoopSettings, total_steps: int) -> Callable[[int], float]:
    """Step -> learning-rate factor: linear warmup over ``warmup_steps``, then constant,
    cosine or linear decay to 0 at ``total_steps``."""
    warmup = s.warmup_steps

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if s.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if s.schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def run_epochs(
    task: Task,
    s: LoopSettings,
    out: Path,
    ctx: DistContext,
    *,
    state_file: str,
    resume: bool,
    progress: bool,
    max_epochs_this_call: int | None = None,
) -> LoopResult:
    """Train ``task`` for ``s.epochs`` epochs into ``out`` (``out/metrics.jsonl`` and the
    checkpoint ``out/state_file`` after every epoch), continuing from that checkpoint when ``resume``."""
    device = ctx.device
    amp_dtype = autocast_dtype(s.precision, device)
    module = task.module
    if ctx.enabled:
        module = nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = adamw(task.model, task.pretrained_parameters(), s)
    steps = task.num_batches() if s.steps_per_epoch <= 0 else min(s.steps_per_epoch, task.num_batches())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(s, s.epochs * steps))
    # fp16 gradients underflow without loss scaling; for fp32 and bf16 the scaler is a no-op
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    reference = task.reference_positions()

    start, best_value, best_epoch, bad_epochs, stopped = 0, -math.inf, -1, 0, False
    history: list[dict[str, Any]] = []
    path = out / state_file
    state = load_shared_state(path, ctx) if resume else None
    if state is not None:
        task.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # empty from a run without fp16
            scaler.load_state_dict(state["scaler"])
        mine = state["ranks"][ctx.rank]
        set_rng_state(mine["rng"])
        task.load_rank_state(mine["task"])
        start, best_value, best_epoch, bad_epochs = state["epoch"] + 1, state["best_value"], state["best_epoch"], state["bad_epochs"]
        history = [r for r in read_metrics(out) if r["epoch"] < start]
        if state["stopped"]:
            start, stopped = s.epochs, True  # early stopping already ended this run
    if ctx.is_main:
        write_metrics(out, history)

    train_seconds = sum(r.get("seconds", 0.0) for r in history)
    done = 0
    for epoch in range(start, s.epochs):
        if max_epochs_this_call is not None and done >= max_epochs_this_call:
            break
        task.model.train()
        t0 = time.perf_counter()
        total, positions, n_steps = 0.0, 0, 0
        parts: dict[str, float] = {}
        show_bar = ctx.is_main and show_progress(quiet=not progress)
        bar = tqdm(total=steps, desc=f"epoch {epoch}", disable=not show_bar, leave=False, unit="batch")
        batches = iter(task.batches(epoch))
        for step in range(steps):
            # labels that split a step for torch.profiler (benchmarks/step_profile.py); ~12 us each
            # without a profiler (measured on this 2-core machine), under 0.1% of a SASRec step
            with record_function("recx.batch"):
                batch = next(batches, None)
            if batch is None:
                break
            with record_function("recx.forward"):
                res = task.step(module, batch, amp_dtype)
                n = res.positions
                scale = loss_scale(n, ctx.global_count(n) if reference is None else n, ctx.world_size, reference)
            with record_function("recx.backward"):
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(res.loss * scale).backward()
            with record_function("recx.optimizer"):
                if s.grad_clip > 0:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                    for group in task.clip_groups():
                        nn.utils.clip_grad_norm_(group, s.grad_clip)
                scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
                scaler.update()
                scheduler.step()
            value = res.loss.item()
            if not math.isfinite(value):
                raise Diverged(f"{out}: training diverged in epoch {epoch}, step {step}: the loss is {value}; train again with "
                                f"a lower {s.lr_hint} (now {s.lr:g}), --grad-clip 1 (now {s.grad_clip:g}) or --precision fp32 (now {s.precision})")
            total, positions, n_steps = total + value * n, positions + n, n_steps + 1
            for k, v in res.parts.items():
                parts[k] = parts.get(k, 0.0) + v
            if show_bar:
                bar.update(1)
                bar.set_postfix(loss=f"{total / max(positions, 1):.4f}", pos_s=f"{positions / (time.perf_counter() - t0):.0f}")
        bar.close()
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        done += 1
        row: dict[str, Any] = {"epoch": epoch, "loss": total / max(positions, 1), "seconds": seconds, "steps": n_steps,
                               "positions_per_s": positions / seconds,
                               **{k: v / max(n_steps, 1) for k, v in parts.items()}, **task.epoch_stats(seconds)}
        ranks = ctx.gather_objects({"rng": rng_state(), "task": task.rank_state()})
        if not ctx.is_main:  # rank 0 validates once and decides; the others follow
            stopped = ctx.broadcast_flag(False)
            if stopped:
                break
            continue
        valid = task.validate(amp_dtype)
        improved = False
        if valid is not None:
            value = valid[s.metric]
            improved = value > best_value
            if improved:
                best_value, best_epoch, bad_epochs = value, epoch, 0
            else:
                bad_epochs += 1
            stopped = s.patience > 0 and bad_epochs >= s.patience
            row.update(valid=valid, best=improved)
        else:
            best_epoch = epoch
        history.append(row)
        task.on_epoch_end(epoch, row, improved)
        write_metrics(out, history)
        torch_save(
            {
                "format": STATE_FORMAT,
                "world_size": ctx.world_size,
                "model": task.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "ranks": ranks,
                "epoch": epoch,
                "best_value": best_value,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "stopped": stopped,
            },
            path,
        )
        task.after_checkpoint(epoch, row)
        if progress:
            shown = f"  valid {s.metric} {valid[s.metric]:.4f}{'  *' if improved else ''}" if valid is not None else ""
            extra = "".join(f"  {k} {row[k]:.4f}" for k in parts)
            tqdm.write(f"epoch {epoch:3d}  loss {row['loss']:.4f}{extra}{shown}  ({seconds:.1f}s)", file=sys.stderr)
        if ctx.broadcast_flag(stopped):
            break
    ctx.barrier()
    last = history[-1]["epoch"] + 1 if history else start
    return LoopResult(history, best_epoch, best_value, stopped, done, train_seconds, stopped or last >= s.epochs)


def load_state(path: Path, world_size: int) -> dict[str, Any]:
    """A loop checkpoint, in the current format, refused when written under another world size."""
    state = migrate_state(load_checkpoint(path))
    check_world_size(path, int(state["world_size"]), world_size)
    return state


def load_shared_state(path: Path, ctx: DistContext) -> dict[str, Any] | None:
    """The loop checkpoint every rank resumes from (None where there is none yet).

    Each rank reads ``path`` itself, so on several machines the runs folder must be one shared
    filesystem: a rank that misses the file, or finds another epoch in it than rank 0 (a copied
    folder), would train from other weights, so every rank refuses together."""
    here = path.is_file()
    having = ctx.global_count(int(here))
    if having not in (0, ctx.world_size):
        raise LoopError(f"{path}: found by {having} of {ctx.world_size} processes (rank {ctx.rank} on {platform.node()} "
                        f"{'has' if here else 'lacks'} it); on several machines the runs folder must be one shared "
                        "filesystem mounted at the same path on each, not a copy")
    if not here:
        return None
    state = load_state(path, ctx.world_size)
    if ctx.global_count(int(ctx.broadcast(state["epoch"]) != state["epoch"])):
        raise LoopError(f"{path}: the ranks read different epochs from it (rank {ctx.rank} on {platform.node()}: epoch "
                        f"{state['epoch']}); on several machines the runs folder must be one shared filesystem, not a copy")
    return state


def check_world_size(path: Path, saved: int, world_size: int) -> None:
    """Refuse to resume under another number of processes than the run trained with."""
    if saved != world_size:
        raise LoopError(f"{path}: written by {saved} process(es), resumed by {world_size}: each rank's data shard and random "
                        f"state belong to the world size it trained with; resume with "
                        + ("no torchrun (one process)" if saved == 1 else f"`torchrun --nproc-per-node {saved} ...`"))


def migrate_state(state: dict[str, Any]) -> dict[str, Any]:
    """Train's last.pt from before the shared loop (format 1: rank 0's RNG only) as format 2."""
    if state.get("format", 1) >= STATE_FORMAT:
        return state
    if "lm" in state:  # recx pretrain's state.pt before the shared loop
        raise LoopError("pretrain state written by an older recx cannot resume; its model.pt still serves `recx train --init`")
    if "rng" not in state or "optimizer" not in state:
        raise LoopError("checkpoint written by an older recx in a form that cannot resume; start a new run (its weights still load)")
    return {
        **state,
        "format": STATE_FORMAT,
        "world_size": 1,
        "scaler": state.get("scaler", {}),
        "ranks": [{"rng": state["rng"], "task": {"mask_generator": state["mask_generator"], "loss": state["loss"]}}],
    }
