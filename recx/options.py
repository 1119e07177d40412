"""The command vocabulary: one spelling, one meaning and one default per concept, for every command.

Every `recx` command that takes one of these concepts declares it with the factory below, so
`recx train -o X`, `recx featurize -o X` and `recx export -o X` mean the same thing and print
the same help.  README's "Command vocabulary" table lists them.

    -o/--out PATH        where a command writes its output
    --force              replace an output that recx wrote before (never a user file)
    --run RUN            a run folder (train --resume, eval, recommend, export, ensemble)
    --dataset DIR        the dataset (default: the workspace's)
    --device DEVICE      auto | cpu | cuda | cuda:N
    --precision P        compute precision: auto | fp32 | bf16 | fp16
    --seed N             every random choice; default DEFAULT_SEED everywhere
    -q/--quiet           no progress output
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

DEFAULT_SEED = 42
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_HELP = "Compute precision: auto (bf16 where the hardware runs it natively, else fp32; fp16 on GPUs without bf16) | fp32 | bf16 | fp16."

# old spellings -> the vocabulary's; `recx` answers an old one with one line naming the new one
RENAMED_FLAGS = {
    "--amp": "--precision (auto | fp32 | bf16 | fp16)",
    "--compute-dtype": "--precision (auto | fp32 | bf16 | fp16)",
    "--overwrite": "--force",
    "--reo-pooling": "--pooling",
    "--dtype": "--store-dtype",
    "--max-length": "--max-len (items) or --max-tokens (featurize: tokens per text)",
    "--dir": "-o/--out",
}


def renamed_flag(argv: list[str]) -> str | None:
    """One line for the first renamed flag in ``argv`` (``--amp`` or ``--amp=bf16``), else None."""
    if argv[:1] == ["train"] and "--resume" in argv:
        after = argv[argv.index("--resume") + 1 :]
        if after and not after[0].startswith("-"):
            return f"`recx train --resume RUN` is now `recx train --resume --run {after[0]}` (--run names a run everywhere)"
    for arg in argv:
        old = arg.split("=", 1)[0]
        if old in RENAMED_FLAGS:
            return f"{old} was renamed: use {RENAMED_FLAGS[old]}"
    return None


def out_option(help: str, default: Any = None) -> Any:
    return typer.Option(default, "--out", "-o", help=help)


def force_option(what: str = "an output that recx wrote before") -> Any:
    return typer.Option(False, "--force", help=f"Replace {what} (never a folder or file recx did not write).")


def run_option(help: str = "Run folder (default: the workspace's latest finished run).") -> Any:
    # --run-dir: torchrun reads "--run" as an abbreviation of its own --run-path and stops there
    return typer.Option(None, "--run", "--run-dir", help=help + " Under torchrun spell it --run-dir.")


def dataset_option(help: str = "Dataset directory (default: the workspace's).") -> Any:
    return typer.Option(None, "--dataset", help=help)


def device_option(default: Optional[str] = "auto") -> Any:
    return typer.Option(default, "--device", help="auto | cpu | cuda | cuda:N." + ("" if default is None else f" [default: {default}]"))


def precision_option(default: Optional[str] = "auto") -> Any:
    return typer.Option(default, "--precision", help=PRECISION_HELP + ("" if default is None else f" [default: {default}]"))


def seed_option(default: Optional[int] = DEFAULT_SEED, what: str = "every random choice") -> Any:
    return typer.Option(default, "--seed", help=f"Random seed of {what}. [default: {DEFAULT_SEED}]")


def quiet_option() -> Any:
    return typer.Option(False, "--quiet", "-q", help="No progress output.")


def show_progress(quiet: bool = False) -> bool:
    """Progress bars only on a terminal: redirected output gets one line per epoch or stage."""
    return not quiet and sys.stderr.isatty()
