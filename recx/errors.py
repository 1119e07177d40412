"""Errors users see: one line naming the file and what is wrong, never a traceback.

Every command goes through :func:`report` (by the :func:`user_errors` decorator and again in
``recx.cli.main``): a :class:`RecxError` or an expected OS fault prints one line; anything
unexpected prints one line plus the path of a log file holding the full traceback.
``RECX_DEBUG=1`` re-raises instead, so the traceback shows where it happened.
"""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# OS faults a user can act on; anything else from the OS is reported as unexpected
_DISK_FAULTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


class RecxError(Exception):
    """Base of every error recx reports to a user as a one-line message."""


def warn(message: str) -> None:
    """One yellow ``warning: ...`` line on stderr (no Python ``warnings`` prefix or source line)."""
    try:
        import typer

        typer.secho(f"warning: {message}", fg="yellow", err=True)
    except ImportError:  # pragma: no cover - typer is a dependency
        print(f"warning: {message}", file=sys.stderr)


def os_fault(e: OSError, path: str | os.PathLike | None = None) -> str | None:
    """``"PATH: no space left on device"`` for the OS faults a user can act on, else None."""
    reason = _DISK_FAULTS.get(e.errno or -1)
    if reason is None:
        return None
    where = path if path is not None else (e.filename or "")
    return f"{where}: {reason}" if where else reason


def crash_log_dir() -> Path:
    """Where unexpected tracebacks are written: ``$RECX_LOG_DIR``, else ``~/.cache/recx/logs``."""
    if os.environ.get("RECX_LOG_DIR"):
        return Path(os.environ["RECX_LOG_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recx" / "logs"


def _write_crash_log(exc: BaseException) -> Path | None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    header = f"recx {' '.join(sys.argv[1:])}\n{_dt.datetime.now().isoformat(timespec='seconds')}\n\n"
    for folder in (crash_log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"recx-error-{stamp}-{os.getpid()}.log"
            path.write_text(header + text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


def error_line(exc: BaseException) -> tuple[str, Path | None]:
    """(the one line a user sees, the crash log written for an unexpected exception or None)."""
    if isinstance(exc, RecxError):
        return _first_line(exc), None
    if isinstance(exc, KeyError) and exc.args:  # KeyError repr()s its message
        return _first_line(exc.args[0]), None
    if isinstance(exc, OSError):
        fault = os_fault(exc)
        if fault is not None:
            return fault, None
        if isinstance(exc, FileNotFoundError):
            return f"{exc.filename}: no such file or directory" if exc.filename else _first_line(exc), None
    if isinstance(exc, ValueError):
        return _first_line(exc), None
    log = _write_crash_log(exc)
    where = f"full traceback in {log}" if log else "no log could be written"
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} ({where}; RECX_DEBUG=1 shows it here)", log


def report(exc: BaseException) -> int:
    """Print ``exc`` as one red line on stderr; returns the exit code (1, or 130 when interrupted)."""
    import typer

    if isinstance(exc, KeyboardInterrupt):
        typer.secho("interrupted", fg="red", err=True)
        return 130
    line, _ = error_line(exc)
    typer.secho(f"error: {line}", fg="red", err=True)
    return 1


def user_errors(fn: F) -> F:
    """CLI decorator: every exception becomes one line through :func:`report`, exit 1.

    Click's own exits and usage errors pass through untouched. ``RECX_DEBUG=1`` re-raises.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _click_exits():
            raise
        except (Exception, KeyboardInterrupt) as e:
            if os.environ.get("RECX_DEBUG"):
                raise
            sys.exit(report(e))

    return wrapper  # type: ignore[return-value]


def _click_exits() -> tuple[type[BaseException], ...]:
    """Click's exits, aborts and usage errors, from click and from the copy typer ships
    (typer.BadParameter is typer's, not click's)."""
    import click
    import typer

    kinds: list[type[BaseException]] = [click.exceptions.Exit, click.exceptions.Abort, click.ClickException]
    kinds += [k for k in (getattr(typer, "Exit", None), getattr(typer, "Abort", None)) if isinstance(k, type)]
    vendored = getattr(getattr(typer, "_click", None), "exceptions", None)
    if vendored is not None:
        kinds.append(vendored.ClickException)
    return tuple(kinds)
