"""`recx pretrain`: Reo-LM recommendation-oriented pre-training across domains.

Its options are generated from PretrainConfig's fields (recx/trainer/cli_options.py), as
`recx train`'s are from TrainConfig's; the options both commands have share one help text.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Optional

import typer

from recx.errors import user_errors
from recx.options import out_option, quiet_option
from recx.trainer.cli_options import command, given_options
from recx.trainer.config import option_specs


def _fixed(kind: Any, name: str, default: Any, kind_of: Any = inspect.Parameter.KEYWORD_ONLY) -> inspect.Parameter:
    return inspect.Parameter(name, kind_of, default=default, annotation=kind)


def pretrain(more_domains: Optional[list[Path]], domains: list[Path], out: Path, image_store: Optional[list[Path]], resume: bool,
             quiet: bool, **options: Any) -> None:
    """Pre-train a Reo-LM across domains; fine-tune it with `recx train --model reo-lm --init OUT`."""
    from recx.trainer.reolm.pretrain import PretrainConfig, pretrain as run

    specs = option_specs(PretrainConfig)
    cfg = PretrainConfig(domains=[str(d.resolve()) for d in [*domains, *(more_domains or [])]],
                         image_stores=[str(p.resolve()) for p in image_store or []], **given_options(specs, options))
    path = run(cfg, out, resume=resume, progress=not quiet)
    typer.echo(f"pretrained checkpoint {path}")


def _build() -> Any:
    from recx.trainer.reolm.pretrain_config import PretrainConfig

    fixed = [
        _fixed(Optional[list[Path]], "more_domains", typer.Argument(None, metavar="[DIR]...", help="More dataset directories (`--domains A B C` lists three)."),
               inspect.Parameter.POSITIONAL_OR_KEYWORD),
        _fixed(list[Path], "domains", typer.Option(..., "--domains", help="Dataset directories to pre-train on (repeat --domains, or list several after it).")),
        _fixed(Path, "out", out_option("Checkpoint directory to write (config.json, model.pt, state.pt, metrics.jsonl).", default=...)),
        _fixed(Optional[list[Path]], "image_store", typer.Option(None, "--image-store", help="Image store of one of the domains (repeatable; matched by catalog fingerprint).")),
        _fixed(bool, "resume", typer.Option(False, "--resume", help="Continue the checkpoint in --out.")),
        _fixed(bool, "quiet", quiet_option()),
    ]
    return user_errors(command(option_specs(PretrainConfig).values(), fixed, pretrain, pretrain.__doc__ or ""))


pretrain_command = _build()
