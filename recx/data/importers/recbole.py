"""RecBole atomic files: ``X.inter`` (and optionally ``X.item``), tab separated, with typed
headers such as ``user_id:token  item_id:token  rating:float  timestamp:float``.

Columns may be named with or without their ``:type`` suffix in options.  The item text joins the
``token_seq`` columns of ``X.item`` (title, categories, brand, ...) unless ``text_fields`` says
otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import ImportFault, parse_float, read_table, require_file
from recx.data.importers.text import TextSpec, parse_fields


def _find(src: Path, suffix: str, name: str | None) -> Path | None:
    if src.is_file():
        return src if suffix == ".inter" else (src.with_suffix(suffix) if src.with_suffix(suffix).exists() else None)
    if name:
        p = src / f"{name}{suffix}"
        return p if p.exists() else None
    found = sorted(src.glob(f"*{suffix}"))
    found = [p for p in found if p.name.count(".") == 1]  # skip X.train.inter (benchmark files)
    if len(found) > 1:
        raise ImportFault(f"{src}: several {suffix} files ({', '.join(p.name for p in found)}); pass --name")
    return found[0] if found else None


def _column(header: list[str], name: str, path: Path) -> str:
    """Match ``name`` (with or without ``:type``) to a header column."""
    for c in header:
        if c == name or c.split(":")[0] == name.split(":")[0]:
            return c
    raise ImportFault(f"{path}:1: missing column {name!r} (header has {', '.join(header)})")


def import_recbole(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    name: str | None = None,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    min_rating: float | None = None,
    text_fields: str | None = None,
    text_template: str | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "exact",
    max_length: int = 0,
) -> SequenceDataset:
    """Import RecBole atomic files from a folder (or the ``.inter`` file itself).

    Args:
        min_rating: drop interactions whose ``rating`` is below it (counted in the summary).
        time_col: ordering column; when the file has none, each user's rows keep file order.
    """
    src_p = Path(src)
    inter = _find(src_p, ".inter", name)
    if inter is None:
        raise ImportFault(f"{src_p}: no .inter file (RecBole atomic layout X.inter, X.item)")
    require_file(inter, ".inter file")
    refuse_existing(out_dir, force)
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    n = 0
    cols: tuple[str, str, str | None, str | None] | None = None
    for lineno, r in read_table(inter, "\t"):
        if cols is None:
            header = list(r)
            tcol = None
            try:
                tcol = _column(header, time_col, inter)
            except ImportFault:
                pass
            rcol = _column(header, "rating", inter) if min_rating is not None else None
            cols = (_column(header, user_col, inter), _column(header, item_col, inter), tcol, rcol)
        ucol, icol, tcol, rcol = cols
        n += 1
        if rcol is not None and parse_float(r[rcol], inter, lineno, rcol) < min_rating:
            ledger.outcomes[f"skipped: rating below {min_rating:g}"] += 1
            continue
        t = int(parse_float(r[tcol], inter, lineno, tcol)) if tcol else 0
        log.add(r[ucol], r[icol], t)
    ledger.read(inter, n)

    catalog, spec = Catalog(), None
    item_file = _find(src_p, ".item", name or inter.name[: -len(".inter")])
    if item_file is not None:
        m = 0
        for lineno, r in read_table(require_file(item_file, ".item file"), "\t"):
            if spec is None:
                header = list(r)
                id_col = _column(header, item_col, item_file)
                bare = [c.split(":")[0] for c in header]
                default = [b for c, b in zip(header, bare) if c.endswith(":token_seq") and c != id_col]
                fields = [_column(header, f, item_file).split(":")[0] for f in parse_fields(text_fields, default)]
                spec = TextSpec(fields, text_template)
            m += 1
            iid = r[id_col]
            if iid in catalog.described:
                raise ImportFault(f"{item_file}:{lineno}: item {iid!r} has a second row")
            catalog.described.add(iid)
            text = spec.render({k.split(":")[0]: v for k, v in r.items()})
            if text:
                catalog.text[iid] = text
        ledger.read(item_file, m)
    meta = {
        "name": inter.name[: -len(".inter")],
        "source": {
            "format": "recbole",
            "path": str(inter.parent.resolve()),
            "files": [inter.name] + ([item_file.name] if item_file else []),
            "min_rating": min_rating,
            "order": "timestamp" if cols and cols[2] else "file order (no timestamp column)",
        },
        "text": spec.to_dict() if spec else None,
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, keep_timestamps=bool(cols and cols[2]), rows_read=n)
