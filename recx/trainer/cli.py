"""`recx train`: options resolve as defaults < recx.toml [train] < --config FILE < command line."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.trainer.config import ConfigError, TrainConfig

RESUMABLE = ("epochs", "patience", "device")  # the options `--resume` takes from the command line
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}


def _h(text: str, name: str) -> str:
    return f"{text} [default: {_DEFAULTS[name]}]"


def workspace_layer() -> tuple[dict[str, Any], Path | None]:
    """Options from recx.toml (dataset, stores, runs dir, [train]) if in a workspace."""
    from recx.workspace import NoWorkspace, Workspace

    try:
        ws = Workspace.find()
    except NoWorkspace:
        return {}, None
    layer: dict[str, Any] = dict(ws.section("train"))
    layer["dataset"] = str(ws.dataset_dir)
    layer["runs_dir"] = str(ws.runs_dir)
    layer["stores"] = {m: str(ws.resolve(p)) for m, p in ws.section("stores").items()}
    return layer, ws.root


def parse_stores(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for v in values:
        modality, sep, path = v.partition("=")
        if not sep or not modality or not path:
            raise ValueError(f"--store {v!r}: expected MODALITY=PATH, e.g. text=stores/minilm.h5")
        out[modality] = str(Path(path).resolve())
    return out


@user_errors
def train_command(
    loss: Optional[str] = typer.Option(None, help=_h("bce | sampled_softmax | full_ce | debiased_ce.", "loss")),
    item_tower: Optional[str] = typer.Option(None, help="id | text | image | clip | topk | e2e | fusions like id+text. [default: recx.toml [train], else id]"),
    model: Optional[str] = typer.Option(None, help=_h("Sequence encoder: sasrec | gru4rec | bert4rec | reo-lm (a language model as both towers).", "model")),
    adapter: Optional[str] = typer.Option(None, help=_h("Store -> hidden adapter: linear | mlp | moe.", "adapter")),
    fusion: Optional[str] = typer.Option(None, help=_h("How a '+' tower combines parts: add | concat | gated.", "fusion")),
    whiten: Optional[bool] = typer.Option(None, "--whiten/--no-whiten", help=_h("PCA-whiten frozen store features before the adapter.", "whiten")),
    encoder: Optional[str] = typer.Option(None, help="e2e tower: encoder name or local folder (`recx models`)."),
    tune_blocks: Optional[int] = typer.Option(None, help=_h("e2e tower: top encoder blocks unfrozen.", "tune_blocks")),
    encoder_lr: Optional[float] = typer.Option(None, help=_h("topk/e2e: learning rate of the encoder blocks.", "encoder_lr")),
    encoder_weight_decay: Optional[float] = typer.Option(None, help=_h("topk/e2e: weight decay of the encoder blocks.", "encoder_weight_decay")),
    grad_checkpointing: Optional[bool] = typer.Option(None, "--grad-checkpointing/--no-grad-checkpointing", help=_h("e2e: recompute activations in backward.", "grad_checkpointing")),
    store: Optional[list[str]] = typer.Option(None, help="MODALITY=PATH of an H5 store (repeatable). [default: recx.toml [stores]]"),
    hidden: Optional[int] = typer.Option(None, help=_h("Hidden size.", "hidden")),
    layers: Optional[int] = typer.Option(None, help=_h("Transformer blocks.", "layers")),
    heads: Optional[int] = typer.Option(None, help=_h("Attention heads.", "heads")),
    dropout: Optional[float] = typer.Option(None, help=_h("Dropout.", "dropout")),
    max_len: Optional[int] = typer.Option(None, help=_h("Positions per sequence.", "max_len")),
    mask_ratio: Optional[float] = typer.Option(None, help=_h("bert4rec: share of items masked per training row.", "mask_ratio")),
    warm_start: Optional[Path] = typer.Option(None, help="Start from this finished run's best weights where names and shapes match (e.g. a frozen id+text run before --item-tower id+topk)."),
    lm: Optional[str] = typer.Option(None, help=_h("reo-lm: backbone (registry name, cached hub id or local folder).", "lm")),
    init: Optional[Path] = typer.Option(None, help="reo-lm: start from a `recx pretrain` checkpoint dir (refused if its backbone or tokenizer differs)."),
    reo_image: Optional[str] = typer.Option(None, help=_h("reo-lm image token: auto (when --store image=PATH) | none (text only) | store.", "reo_image")),
    reo_tuning: Optional[str] = typer.Option(None, help=_h("reo-lm: full fine-tuning | topk (top --tune-blocks blocks) | lora (peft adapters; their lr is --encoder-lr).", "reo_tuning")),
    lora_rank: Optional[int] = typer.Option(None, help=_h("reo-lm --reo-tuning lora: adapter rank.", "lora_rank")),
    lora_alpha: Optional[float] = typer.Option(None, help=_h("reo-lm --reo-tuning lora: adapter scale alpha (update scaled by alpha / rank).", "lora_alpha")),
    reo_pooling: Optional[str] = typer.Option(None, help=_h("reo-lm vector: mean | cls pooling.", "reo_pooling")),
    item_tokens: Optional[int] = typer.Option(None, help=_h("reo-lm: text tokens kept per item.", "item_tokens")),
    user_tokens: Optional[int] = typer.Option(None, help=_h("reo-lm: token budget of a user's packed items (newest kept).", "user_tokens")),
    alpha: Optional[float] = typer.Option(None, help=_h("Popularity power of logQ corrections.", "alpha")),
    temperature: Optional[float] = typer.Option(None, help=_h(">0: cosine similarity / temperature.", "temperature")),
    mask_scope: Optional[str] = typer.Option(None, help=_h("debiased_ce masks the user's whole sequence or only the past: sequence | past.", "mask_scope")),
    num_negatives: Optional[int] = typer.Option(None, help=_h("sampled_softmax negatives per batch.", "num_negatives")),
    negative_sampler: Optional[str] = typer.Option(None, help=_h("sampled_softmax negatives: uniform | popularity.", "negative_sampler")),
    epochs: Optional[int] = typer.Option(None, help=_h("Maximum epochs.", "epochs")),
    batch_size: Optional[int] = typer.Option(None, help=_h("Users per batch.", "batch_size")),
    lr: Optional[float] = typer.Option(None, help=_h("Learning rate (AdamW).", "lr")),
    weight_decay: Optional[float] = typer.Option(None, help=_h("AdamW weight decay (not on biases/norms).", "weight_decay")),
    schedule: Optional[str] = typer.Option(None, help=_h("constant | cosine.", "schedule")),
    warmup_steps: Optional[int] = typer.Option(None, help=_h("Linear warmup steps.", "warmup_steps")),
    grad_clip: Optional[float] = typer.Option(None, help=_h("Gradient norm clip (0 = off).", "grad_clip")),
    loss_weighting: Optional[str] = typer.Option(None, help=_h("positions: each target position weighs the same over the epoch; batch: each batch's mean weighs the same (over-weights short sequences, which share batches).", "loss_weighting")),
    amp: Optional[str] = typer.Option(None, help=_h("Mixed precision: auto | bf16 | fp16 | off (auto = bf16 only where the hardware has it).", "amp")),
    patience: Optional[int] = typer.Option(None, help=_h("Early stopping: epochs without validation improvement.", "patience")),
    metric: Optional[str] = typer.Option(None, help=_h("Validation metric for early stopping and the best checkpoint.", "metric")),
    seed: Optional[int] = typer.Option(None, help=_h("Random seed.", "seed")),
    device: Optional[str] = typer.Option(None, help=_h("auto | cpu | cuda | cuda:N.", "device")),
    name: Optional[str] = typer.Option(None, help="Run name (folder under the runs dir). [default: time-model-tower-loss]"),
    dataset: Optional[Path] = typer.Option(None, help="Dataset directory. [default: recx.toml [workspace] dataset]"),
    config: Optional[Path] = typer.Option(None, "--config", help="A run.toml whose values the command line overrides."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a sequence recommender; writes runs/<name>/ (config, checkpoints, metrics, curve)."""
    from recx.trainer.checkpoint import saved_options
    from recx.trainer.loop import fit

    cli = dict(
        loss=loss, item_tower=item_tower, model=model, adapter=adapter, fusion=fusion, whiten=whiten, stores=parse_stores(store),
        encoder=encoder, tune_blocks=tune_blocks, encoder_lr=encoder_lr, encoder_weight_decay=encoder_weight_decay,
        grad_checkpointing=grad_checkpointing,
        hidden=hidden, layers=layers, heads=heads, dropout=dropout, max_len=max_len, mask_ratio=mask_ratio, alpha=alpha,
        temperature=temperature, mask_scope=mask_scope, num_negatives=num_negatives, negative_sampler=negative_sampler,
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, schedule=schedule,
        warmup_steps=warmup_steps, grad_clip=grad_clip, loss_weighting=loss_weighting, amp=amp, patience=patience, metric=metric, seed=seed,
        device=device, name=name, dataset=str(dataset.resolve()) if dataset else None,
        warm_start=str(warm_start.resolve()) if warm_start else None,
    )
    cli.update(lm=lm, init=str(init.resolve()) if init else None, reo_image=reo_image, reo_tuning=reo_tuning, lora_rank=lora_rank, lora_alpha=lora_alpha, reo_pooling=reo_pooling, item_tokens=item_tokens, user_tokens=user_tokens)
    if resume is not None:
        ignored = [k for k, v in cli.items() if v is not None and k not in RESUMABLE] + (["config"] if config else [])
        if ignored:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in ignored)
            raise ConfigError(f"--resume {resume} continues the run with its saved options, so {flags} would be ignored; "
                              f"start a new run to change {'them' if len(ignored) > 1 else 'it'} (only --epochs, --patience "
                              "and --device apply to a resumed run)")
        cfg = TrainConfig.resolve(saved_options(resume), {k: v for k, v in cli.items() if k in RESUMABLE})
        result = fit(cfg, run_dir=resume, resume=True, progress=not quiet)
    else:
        ws_layer, _ = workspace_layer()
        file_layer = TrainConfig.read_toml(config) if config else None
        cfg = TrainConfig.resolve(ws_layer, file_layer, cli)
        cfg.stores = cfg.stores_read()  # record only the stores this model reads
        result = fit(cfg, progress=not quiet)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports the run
        return
    best = result.best_valid
    typer.echo(
        f"run {result.run_dir}: best epoch {result.best_epoch}, valid "
        + ", ".join(f"{k} {v:.4f}" for k, v in best.items())
        + f" ({result.epochs_run} epochs, {result.train_seconds:.0f}s training)"
    )
