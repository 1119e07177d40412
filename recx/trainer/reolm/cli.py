"""`recx pretrain`: Reo-LM recommendation-oriented pre-training across domains.

Its options are generated from PretrainConfig's fields (recx/trainer/cli_options.py), as
`recx train`'s are from TrainConfig's; the options both commands have share one help text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.options import out_option, quiet_option
from recx.trainer.cli_options import command, given_options
from recx.trainer.config import option_specs
from recx.trainer.reolm.pretrain_config import PretrainConfig


def pretrain(
    more_domains: Optional[list[Path]] = typer.Argument(None, metavar="[DIR]...", help="More dataset directories (`--domains A B C` lists three)."),
    domains: list[Path] = typer.Option(..., "--domains", help="Dataset directories to pre-train on (repeat --domains, or list several after it)."),
    out: Path = out_option("Checkpoint directory to write (config.json, model.pt, state.pt, metrics.jsonl).", default=...),
    image_store: Optional[list[Path]] = typer.Option(None, "--image-store", help="Image store of one of the domains (repeatable; matched by catalog fingerprint)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the checkpoint in --out."),
    quiet: bool = quiet_option(),
    **options: Any,
) -> None:
    """Pre-train a Reo-LM across domains; fine-tune it with `recx train --model reo-lm --init OUT`."""
    from recx.trainer.reolm.pretrain import pretrain as run

    cfg = PretrainConfig(domains=[str(d.resolve()) for d in [*domains, *(more_domains or [])]],
                         image_stores=[str(p.resolve()) for p in image_store or []], **given_options(option_specs(PretrainConfig), options))
    path = run(cfg, out, resume=resume, progress=not quiet)
    typer.echo(f"pretrained checkpoint {path}")


pretrain_command = user_errors(command(pretrain, option_specs(PretrainConfig).values()))
