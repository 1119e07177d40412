"""Importers: one module per source format, each parsing its files into the shared pipeline
(``reading``, ``text``, ``pipeline``) and writing a dataset directory."""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Callable

from recx.data.dataset import SequenceDataset

# format -> "module:function"; imported lazily so `recx data info` stays fast.
IMPORTERS: dict[str, str] = {
    "unisrec": "recx.data.importers.unisrec:import_unisrec",
    "rechorus": "recx.data.importers.rechorus:import_rechorus",
    "recbole": "recx.data.importers.recbole:import_recbole",
    "movielens": "recx.data.importers.movielens:import_movielens",
    "hm": "recx.data.importers.hm:import_hm",
    "mind": "recx.data.importers.mind:import_mind",
    "amazon": "recx.data.importers.amazon:import_amazon",
    "amazon18": "recx.data.importers.amazon18:import_amazon18",
    "csv": "recx.data.importers.csv_generic:import_csv",
}


def get_importer(fmt: str) -> Callable[..., SequenceDataset]:
    try:
        target = IMPORTERS[fmt]
    except KeyError:
        raise ValueError(f"unknown import format {fmt!r}; choose one of {', '.join(sorted(IMPORTERS))}") from None
    module, fn = target.split(":")
    return getattr(importlib.import_module(module), fn)


def import_dataset(fmt: str, src: str | os.PathLike, out_dir: str | os.PathLike, force: bool = False, **options: Any) -> SequenceDataset:
    """Run the ``fmt`` importer; options it does not take are refused by name (None = unset)."""
    fn = get_importer(fmt)
    accepted = inspect.signature(fn).parameters
    given = {k: v for k, v in options.items() if v is not None}
    wrong = [k for k in given if k not in accepted]
    if wrong:
        opts = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise ValueError(f"format {fmt!r} does not take {opts}")
    return fn(src, out_dir, force=force, **given)
