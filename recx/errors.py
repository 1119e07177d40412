"""Errors users see: one line naming the file and what is wrong, never a traceback."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class RecxError(Exception):
    """Base of every error recx reports to a user as a one-line message."""


def user_errors(fn: F) -> F:
    """CLI decorator: print RecxError / ValueError / FileNotFoundError as one red line, exit 1.

    Set RECX_DEBUG=1 to get the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (RecxError, ValueError, FileNotFoundError, KeyError, OSError) as e:
            if os.environ.get("RECX_DEBUG"):
                raise
            import typer

            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            typer.secho(f"error: {msg}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
