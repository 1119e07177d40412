"""The `recx` command: a thin typer app that assembles each stage's commands.

Each stage owns its options in ``recx/<stage>/cli.py`` and calls its Python API; this module
only registers them, so stages can grow independently.
"""

from __future__ import annotations

import os
import sys

import typer

from recx.data.cli import app as data_app
from recx.ensemble.cli import ensemble_command
from recx.errors import report
from recx.evalrun.cli import eval_command
from recx.featurize.cli import featurize_command, models_command
from recx.inference.cli import export_command, recommend_command
from recx.quickstart import quickstart_command
from recx.study.cli import study_command
from recx.trainer.cli import train_command
from recx.trainer.reolm.cli import pretrain_command

app = typer.Typer(
    name="recx",
    help="Modality-based sequential recommendation: featurize items, train sequence models, rank the full catalog.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show literal "[default: ...]" and "[train]"
)
app.add_typer(data_app, name="data")
app.command("featurize")(featurize_command)
app.command("models")(models_command)
app.command("train")(train_command)
app.command("pretrain")(pretrain_command)
app.command("eval")(eval_command)
app.command("ensemble")(ensemble_command)
app.command("recommend")(recommend_command)
app.command("export")(export_command)
app.command("study")(study_command)
app.command("quickstart")(quickstart_command)


def main() -> None:
    """The ``recx`` console script: every error ends as one line (``recx.errors.report``); an
    option renamed by the command vocabulary (``recx.options``) is answered with its new name."""
    from recx.options import renamed_flag

    renamed = renamed_flag(sys.argv[1:])
    if renamed is not None:
        print(f"recx: {renamed}", file=sys.stderr)
        sys.exit(2)
    try:
        app()
    except SystemExit:
        raise
    except BaseException as e:  # outside any command's own handler (imports, option parsing)
        if os.environ.get("RECX_DEBUG"):
            raise
        sys.exit(report(e))
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Under ``torchrun``, destroy the process group before the interpreter shuts down.

    A gloo rank that reaches interpreter shutdown with the group alive can die with SIGABRT
    ("terminate called without an active exception") after its results are written, and
    torchrun then reports the whole job as failed."""
    dist = sys.modules.get("torch.distributed")  # never imported: no group to leave
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
