"""Typer options generated from config field metadata (recx/trainer/config.py ``option``).

An option is declared once, on its config field (help, choices, default); `recx train` and
`recx pretrain` get their command-line options from here, so help texts, defaults and names
cannot drift between the config, the commands and the docs.
"""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import typer

from recx.trainer.config import OptionSpec


def option_help(spec: OptionSpec) -> str:
    if "[default:" in spec.help:
        return spec.help
    default = spec.default if spec.default not in ("", {}) else "none"
    return f"{spec.help} [default: {default}]"


def typer_parameter(spec: OptionSpec) -> inspect.Parameter:
    """The keyword parameter typer reads for ``spec``: every option defaults to None, so a
    command knows which options were given (they override lower layers, and only given options
    are checked for applicability)."""
    if spec.type is bool:
        decl, annotation = [f"{spec.flag}/--no-{spec.flag[2:]}"], Optional[bool]
    elif isinstance(spec.default, dict):  # MODALITY=PATH, repeatable
        decl, annotation = [spec.flag], Optional[list[str]]
    else:
        decl, annotation = [spec.flag], Optional[spec.type]
    default = typer.Option(None, *decl, help=option_help(spec), show_default=False)
    return inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def parse_stores(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for v in values:
        modality, sep, path = v.partition("=")
        if not sep or not modality or not path:
            raise typer.BadParameter(f"--store {v!r}: expected MODALITY=PATH, e.g. text=stores/minilm.h5")
        out[modality] = str(Path(path).resolve())
    return out


def given_options(specs: dict[str, OptionSpec], values: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line (not None), paths made absolute."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or name not in specs:
            continue
        spec = specs[name]
        if isinstance(spec.default, dict):
            value = parse_stores(value)
        elif spec.path and value:
            value = str(Path(value).resolve())
        out[name] = value
    return out


def command(body: Callable[..., None], specs: Iterable[OptionSpec]) -> Callable[..., None]:
    """A typer command: ``body``'s own parameters (typer options or arguments as defaults),
    then one option per spec, all passed to ``body`` by keyword (the specs through its
    ``**options``).  Its docstring is the command's help."""
    hints = typing.get_type_hints(body)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(body).parameters.values() if p.kind != p.VAR_KEYWORD]
    params = own + [typer_parameter(s) for s in specs]

    @functools.wraps(body)
    def run(**kwargs: Any) -> None:
        body(**kwargs)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    del run.__wrapped__  # typer must read the generated signature, not body's
    return run
