"""`recx train`: a run folder around the shared loop (recx/trainer/engine.py).

:func:`fit` creates or resumes ``runs/<name>/`` (config.json, best.pt, last.pt, metrics.jsonl,
curve.png, finished.json; see checkpoint.py) and runs :class:`TrainTask` (a RecModel, its loss
and the sequence batches) through :func:`~recx.trainer.engine.run_epochs`, which also gives
exact resume.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from recx.artifacts import atomic_write, torch_save
from recx.data.dataset import SequenceDataset, user_sample
from recx.device import autocast
from recx.distributed import DistContext, join
from recx.errors import warn
from recx.evaluate.metrics import metrics_from_ranks
from recx.evaluate.retrieval import ranks_matmul
from recx.trainer.checkpoint import (
    BEST,
    CURVE,
    FINISHED,
    LAST,
    RunError,
    check_run_inputs,
    load_checkpoint,
    load_run_config,
    mark_finished,
    read_metrics,
    read_run_config,
    store_digests,
    write_run_config,
)
from recx.trainer.config import TrainConfig
from recx.trainer.data import Batch, SequenceBatches
from recx.trainer.engine import LoopSettings, StepOutput, Task, adamw, check_world_size, loss_scale, run_epochs, seed_everything
from recx.trainer.losses import SequenceLoss, build_loss
from recx.trainer.protocol import RecModel
from recx.trainer.registry import build_model
from recx.trainer.tracking import check_backend, open_tracker
from recx.trainer.warm_start import warm_start
from recx.workspace import run_finished

__all__ = ["FitResult", "TrainStep", "TrainTask", "evaluate_split", "fit", "load_trained", "loss_scale", "make_optimizer", "settings"]


EpochListener = Callable[[int, dict[str, Any]], None]
"""Called on the main rank after each validation interval's metrics and checkpoint are written,
with the interval and its metrics.jsonl row (``row["valid"]``: the validation metrics); may raise
to stop the run (a study's pruner does), which stays resumable from that interval.  Only one
process may raise (`recx study` trains each trial in one process): under torchrun the other
ranks would wait for rank 0 at the next interval."""


class TrainStep(torch.nn.Module):
    """Model + loss in one forward, so DDP sees every parameter use (tower calls from the loss too)."""

    def __init__(self, model: RecModel, loss_fn: SequenceLoss):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Batch, amp_dtype: torch.dtype | None) -> torch.Tensor:
        """batch: inputs / targets [B, L] on the model's device -> the mean loss over its targets."""
        device = batch.inputs.device
        items = self.model.step_items()
        with autocast(device, amp_dtype):
            if items is not self.model.tower:  # a per-step memo: every item the loss can ask for
                items.prefetch(batch.inputs, batch.targets)
            states = self.model(batch.inputs, batch.masked, items)
        term = self.model.history_term
        history = term.prefix_scores(batch.inputs) if term is not None else None  # [B, L, L] fp32
        return self.loss_fn(states.float(), batch, items, history)


@dataclass
class FitResult:
    run_dir: Path
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    train_seconds: float


def default_run_name(cfg: TrainConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{cfg.model.name}-{cfg.tower.kind.replace('+', '_')}-{cfg.loss.name}"


def settings(cfg: TrainConfig) -> LoopSettings:
    """The shared loop's settings of a training config.  The loop's "epoch" is one validation
    interval: ``--valid-per-epoch K`` runs K of them per pass over the data."""
    o, t = cfg.optim, cfg.tower
    return LoopSettings(
        epochs=o.epochs * o.valid_per_epoch, lr=o.lr, weight_decay=o.weight_decay, pretrained_lr=t.encoder_lr, pretrained_weight_decay=t.encoder_weight_decay,
        seed=cfg.run.seed, schedule=o.schedule, warmup_steps=o.warmup_steps, grad_clip=o.grad_clip, precision=cfg.run.precision,
        patience=o.patience, metric=o.metric,
    )


def make_optimizer(model: RecModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW as the loop builds it (engine.adamw): pretrained encoder blocks get --encoder-lr."""
    return adamw(model, model.pretrained_parameters(), settings(cfg))


@torch.no_grad()
def evaluate_split(
    model: RecModel,
    dataset: SequenceDataset,
    split: str,
    cfg: TrainConfig,
    ks: tuple[int, ...] = (10,),
    exclude_history: bool = False,
    amp_dtype: torch.dtype | None = None,
    choose_term: bool = False,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Full-catalog HR@K / NDCG@K / MRR of ``split`` (valid or test); ranks by exact scores,
    with the model's history term where it has an active one.

    ``choose_term``: rank with and without the term and keep the better on ``cfg.optim.metric``,
    switching the term's ``active`` flag to match (validation under --history-gradient term).
    ``users``: [U'] the users to rank (default: all)."""
    model.eval()
    device = next(model.parameters()).device
    histories, targets = dataset.split(split)
    if users is not None:
        histories, targets = [histories[u] for u in users], targets[users]
    table = model.item_table().float()  # [N+1, D]
    # one call over the whole split: user_vectors sorts by history length globally, so its
    # batches of short histories are trimmed (per chunk, every chunk would hold a long one);
    # history items are rows of this table, as in `recx eval`, so a topk / e2e tower runs once
    # per item instead of once per history position
    users = model.user_vectors(histories, cfg.model.max_len, cfg.optim.eval_batch_size, lambda: autocast(device, amp_dtype), table=table)  # [U, D]
    term = model.history_term

    def metrics(with_term: bool) -> dict[str, float]:
        ranks = ranks_matmul(users.cpu().numpy(), table.cpu().numpy(), targets, histories if exclude_history else None, device=str(device),
                             history=term.scores(histories) if with_term else None)
        return metrics_from_ranks(ranks, ks)

    if term is None:
        return metrics(False)
    if not choose_term:
        return metrics(term.is_active)
    with_term, without = metrics(True), metrics(False)
    term.active.fill_(with_term[cfg.optim.metric] >= without[cfg.optim.metric])
    return with_term if term.is_active else without


class TrainTask(Task):
    """A RecModel and its loss over one dataset's training sequences (recx train)."""

    def __init__(self, cfg: TrainConfig, model: RecModel, dataset: SequenceDataset, ctx: DistContext, run_dir: Path,
                 listeners: Sequence[EpochListener] = ()):
        device = ctx.device
        self.cfg, self.dataset, self.run_dir, self.listeners = cfg, dataset, run_dir, list(listeners)
        self.model = model.to(device)
        self.sequences = SequenceBatches(dataset.train_sequences(), cfg.model.max_len, cfg.optim.batch_size, cfg.run.seed, ctx.rank,
                                         ctx.world_size, prefix_rows=cfg.optim.prefix_rows)
        self.parts = cfg.optim.valid_per_epoch
        self.interval = 0
        counts = torch.from_numpy(dataset.item_popularity())
        self.loss_fn = build_loss(cfg, counts, lambda rows: self.sequences.item_mask(rows, dataset.num_items).to(device),
                                  ctx.gather_ids if ctx.enabled else None, ctx.rank).to(device)
        self.module = TrainStep(self.model, self.loss_fn)
        self.device = device
        self.mask_generator = torch.Generator().manual_seed(cfg.run.seed + 1)  # BERT4Rec cloze masks
        # drawn once from the run's seed: every validation, and a resumed run, ranks the same users
        self.valid_users = user_sample(dataset.num_users, cfg.optim.valid_users, cfg.run.seed)

    def batches(self, epoch: int):
        """The loop's ``epoch`` is a validation interval: part ``epoch % K`` of data epoch ``epoch // K``."""
        self.interval = epoch
        self.model.begin_epoch()
        return self.sequences.epoch(epoch // self.parts, epoch % self.parts, self.parts)

    def num_batches(self) -> int:
        return self.sequences.num_part_batches(self.parts)

    def step(self, module: torch.nn.Module, batch: Batch, amp_dtype: torch.dtype | None) -> StepOutput:
        batch = self.model.training_batch(type(batch)(*(None if t is None else t.to(self.device) for t in batch)), self.mask_generator)
        return StepOutput(module(batch, amp_dtype), int((batch.targets > 0).sum()))

    def pretrained_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.pretrained_parameters()

    @property
    def term_apart(self) -> bool:
        """The model's history term learns apart from the encoder (--history-gradient term): the
        encoder trains exactly as without a term, and validation decides whether rankings add it."""
        return self.model.history_term is not None and self.cfg.loss.history_gradient == "term"

    def clip_groups(self) -> list[list[torch.nn.Parameter]]:
        """A term learning apart clips on its own, so its gradients never shrink the encoder's
        step (``all``: one loss, one clip)."""
        if not self.term_apart:
            return super().clip_groups()
        term = list(self.model.history_term.parameters())
        own = {id(p) for p in term}
        return [[p for p in self.model.parameters() if id(p) not in own], term]

    def reference_positions(self) -> float | None:
        return None if self.cfg.optim.loss_weighting == "batch" else self.model.targets_per_step(self.sequences, self.cfg.model.mask_ratio)

    def validate(self, amp_dtype: torch.dtype | None) -> dict[str, float]:
        return evaluate_split(self.model, self.dataset, "valid", self.cfg, ks=_ks_for(self.cfg.optim.metric), amp_dtype=amp_dtype,
                              choose_term=self.term_apart, users=self.valid_users)  # each checkpoint keeps its own choice

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        stats = self.model.epoch_stats(seconds)
        return stats if self.parts == 1 else {**stats, "data_epochs": (self.interval + 1) / self.parts}

    def rank_state(self) -> dict[str, Any]:
        return {"mask_generator": self.mask_generator.get_state(), "loss": self.loss_fn.state_dict()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.mask_generator.set_state(state["mask_generator"])
        self.loss_fn.load_state_dict(state["loss"])

    def on_epoch_end(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        if improved:
            torch_save({"model": self.model.state_dict(), "epoch": epoch, "valid": row["valid"], "config": self.cfg.to_dict()}, self.run_dir / BEST)

    def after_checkpoint(self, epoch: int, row: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(epoch, row)


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
    listeners: Sequence[EpochListener] = (),
) -> FitResult:
    """Train ``cfg`` into ``run_dir`` (default ``cfg.run.runs_dir/<name>``).

    Args:
        resume: continue the run in ``run_dir`` from its ``last.pt``.
        max_epochs_this_call: stop after this many epochs (the run stays resumable); used by
            tests to interrupt a run deterministically.
        listeners: hear every validation interval (``recx study``'s pruning); ``--log`` adds the
            run's tracker (recx/trainer/tracking.py).
    """
    cfg.validate()
    if run_dir is None:
        cfg.run.name = cfg.run.name or default_run_name(cfg)
        run_dir = Path(cfg.run.runs_dir) / cfg.run.name
    run_dir = Path(run_dir)
    seed_everything(cfg.run.seed)
    ctx = join(cfg.run.device)

    dataset = SequenceDataset(cfg.run.dataset)
    digests = store_digests(cfg)
    if resume:
        saved = read_run_config(run_dir)
        check_run_inputs(run_dir, saved, dataset, digests)
        check_world_size(run_dir / LAST, int(saved.get("world_size", 1)), ctx.world_size)
    elif run_dir.exists() and any(run_dir.iterdir()) and ctx.is_main:
        raise RunError(f"{run_dir}: run directory exists; resume it with --resume --run {run_dir} or choose another --name")
    ctx.barrier()

    check_backend(cfg)
    model = build_model(cfg, dataset)  # before the run dir exists: a run that cannot start leaves nothing behind
    if cfg.run.warm_start and not resume:  # a resumed run's last.pt already holds the warm-started weights
        seeded = warm_start(model, cfg.run.warm_start, dataset.fingerprint)
        if ctx.is_main:
            print(f"warm start from {seeded.source}: {len(seeded.loaded)} weights loaded; kept as built (not in the source): {', '.join(seeded.fresh) or 'none'}", file=sys.stderr)
    created = ctx.is_main and not run_dir.exists()
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / FINISHED).unlink(missing_ok=True)  # a resumed run that trains on is unfinished until it ends
        write_run_config(run_dir, cfg, {"dataset_fingerprint": dataset.fingerprint, "num_items": dataset.num_items,
                                        "world_size": ctx.world_size, "store_digests": digests})
    tracker = open_tracker(cfg, run_dir, resume) if ctx.is_main else None
    finished = False
    try:
        task = TrainTask(cfg, model, dataset, ctx, run_dir, [*listeners, *([lambda _, row: tracker.log_epoch(row)] if tracker else [])])
        result = run_epochs(task, settings(cfg), run_dir, ctx, state_file=LAST, resume=resume, progress=progress,
                            max_epochs_this_call=max_epochs_this_call)
        if ctx.is_main:
            plot_curve(run_dir, result.history, cfg.optim.metric)
            if result.finished:
                mark_finished(run_dir, {"best_epoch": result.best_epoch, "epochs_run": len(result.history), "stopped_early": result.stopped_early})
        finished = result.finished
    except BaseException:
        if created and not (run_dir / LAST).is_file():  # failed or interrupted before its first epoch ended
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if tracker is not None:
            tracker.close(finished)
    best_valid = next((r["valid"] for r in result.history if r["epoch"] == result.best_epoch), {})
    return FitResult(run_dir, result.best_epoch, best_valid, len(result.history), result.train_seconds)


def _ks_for(metric: str) -> tuple[int, ...]:
    ks = {10}
    if "@" in metric:
        ks.add(int(metric.split("@")[1]))
    return tuple(sorted(ks))


def load_trained(run_dir: str | Path, checkpoint: str = BEST, dataset_dir: str | Path | None = None) -> tuple[RecModel, TrainConfig, SequenceDataset]:
    """(model in eval mode with the checkpoint's weights, its config, its dataset).

    dataset_dir: read the data from this folder instead of the one the run recorded (it must
    hold the same data: the fingerprint check still applies)."""
    run_dir = Path(run_dir)
    saved = read_run_config(run_dir)
    cfg = load_run_config(run_dir)
    if dataset_dir is not None:
        cfg.run.dataset = str(Path(dataset_dir).resolve())
    dataset = SequenceDataset(cfg.run.dataset)
    check_run_inputs(run_dir, saved, dataset, store_digests(cfg))
    if not run_finished(run_dir):
        last = read_metrics(run_dir)
        warn(f"{run_dir}: training did not finish (interrupted after {len(last)} of {cfg.optim.epochs} epochs); using its "
             f"{checkpoint} as it is; `recx train --resume --run {run_dir}` continues it")
    # the run's checkpoint holds every weight: a reo-lm run does not need its --init dir any more
    if cfg.reolm.init:
        cfg = dataclasses.replace(cfg, reolm=dataclasses.replace(cfg.reolm, init=""))
    model = build_model(cfg, dataset)
    state = load_checkpoint(run_dir / checkpoint)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line or "Missing" in line or "Unexpected" in line), str(e)[:200])
        raise RunError(f"{run_dir / checkpoint}: does not fit this run's model ({detail.rstrip('.')}); "
                       "was it copied from another run?") from None
    return model.eval(), cfg, dataset
