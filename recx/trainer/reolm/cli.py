"""`recx pretrain`: Reo-LM recommendation-oriented pre-training across domains."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recx.errors import user_errors


@user_errors
def pretrain_command(
    more_domains: Optional[list[Path]] = typer.Argument(None, metavar="[DIR]...", help="More dataset directories (`--domains A B C` lists three)."),
    domains: list[Path] = typer.Option(..., "--domains", help="Dataset directories to pre-train on (repeat --domains, or list several after it)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint directory to write (config.json, model.pt, state.pt, metrics.jsonl)."),
    image_store: Optional[list[Path]] = typer.Option(None, "--image-store", help="Image store of one of the domains (repeatable; matched by catalog fingerprint)."),
    lm: str = typer.Option("all-MiniLM-L6-v2", help="Backbone: registry name, cached hub id or local folder."),
    item_tokens: int = typer.Option(32, help="Text tokens kept per item."),
    user_tokens: int = typer.Option(256, help="Token budget of a user's packed items (newest kept)."),
    max_len: int = typer.Option(50, help="Most history items packed."),
    pooling: str = typer.Option("mean", help="mean | cls."),
    temperature: float = typer.Option(0.05, help="Cosine temperature of the in-batch and alignment losses."),
    mlm_ratio: float = typer.Option(0.15, help="Share of item-text tokens masked."),
    mlm_weight: float = typer.Option(1.0, help="Weight of the masked-token loss."),
    align_weight: float = typer.Option(1.0, help="Weight of the item-image alignment loss."),
    epochs: int = typer.Option(1, help="Epochs over the mixed domains."),
    steps_per_epoch: int = typer.Option(0, help="Batches per epoch (0 = all)."),
    batch_size: int = typer.Option(32, help="Users per batch."),
    lr: float = typer.Option(5e-5, help="Backbone learning rate."),
    head_lr: float = typer.Option(1e-3, help="Learning rate of the new parameters (item positions, image projection, MLM head)."),
    amp: str = typer.Option("auto", help="auto | bf16 | off (auto = bf16 only where native)."),
    grad_checkpointing: bool = typer.Option(False, "--grad-checkpointing/--no-grad-checkpointing", help="Recompute activations in backward."),
    seed: int = typer.Option(42, help="Random seed."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue the checkpoint in --out."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines."),
) -> None:
    """Pre-train a Reo-LM across domains; fine-tune it with `recx train --model reo-lm --init OUT`."""
    from recx.trainer.reolm.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        domains=[str(d.resolve()) for d in [*domains, *(more_domains or [])]], image_stores=[str(p.resolve()) for p in image_store or []], lm=lm,
        item_tokens=item_tokens, user_tokens=user_tokens, max_len=max_len, pooling=pooling, temperature=temperature,
        mlm_ratio=mlm_ratio, mlm_weight=mlm_weight, align_weight=align_weight, epochs=epochs, steps_per_epoch=steps_per_epoch,
        batch_size=batch_size, lr=lr, head_lr=head_lr, amp=amp, grad_checkpointing=grad_checkpointing, seed=seed, device=device,
    )
    path = pretrain(cfg, out, resume=resume, progress=not quiet)
    typer.echo(f"pretrained checkpoint {path}")
