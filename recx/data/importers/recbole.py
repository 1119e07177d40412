"""RecBole atomic files: ``X.inter`` (and optionally ``X.item``), tab separated, with typed
headers such as ``user_id:token  item_id:token  rating:float  timestamp:float``.

Columns may be named with or without their ``:type`` suffix in options; user, item and time
columns not named are found by their usual names (``columns.SPELLINGS``).  The item text joins
the ``token_seq`` columns of ``X.item`` (title, categories, brand, ...) unless ``text_fields``
says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.columns import bare, find_column, resolve_columns
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import ImportFault, TimeParser, parse_float, read_header, read_table, require_file
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


def import_recbole(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    name: str | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    time_format: str | None = None,
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
        user_col / item_col / time_col: column names; each left at None is the first of its
            usual spellings in the header.  Without a time column each user's rows keep file order.
        time_format: strptime format for a date time column (numbers are read as seconds otherwise).
    """
    src_p = Path(src)
    inter = _find(src_p, ".inter", name)
    if inter is None:
        raise ImportFault(f"{src_p}: no .inter file (RecBole atomic layout X.inter, X.item)")
    require_file(inter, ".inter file")
    refuse_existing(out_dir, force)
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    header = read_header(inter, "\t")
    cols = resolve_columns(header, inter, user_col, item_col, time_col, key=bare)
    ucol, icol, tcol = cols.user, cols.item, cols.time
    rcol = find_column(header, "rating", inter, key=bare) if min_rating is not None else None
    parse_time = TimeParser(time_format)
    n = 0
    for lineno, r in read_table(inter, "\t"):
        n += 1
        if rcol is not None and parse_float(r[rcol], inter, lineno, rcol) < min_rating:
            ledger.outcomes[f"skipped: rating below {min_rating:g}"] += 1
            continue
        log.add(r[ucol], r[icol], parse_time(r[tcol], inter, lineno, tcol) if tcol else 0)
    ledger.read(inter, n)

    catalog, spec = Catalog(), None
    item_file = _find(src_p, ".item", name or inter.name[: -len(".inter")])
    if item_file is not None:
        m = 0
        for lineno, r in read_table(require_file(item_file, ".item file"), "\t"):
            if spec is None:
                header = list(r)
                id_col = find_column(header, icol, item_file, key=bare)
                default = [bare(c) for c in header if c.endswith(":token_seq") and c != id_col]
                fields = [bare(find_column(header, f, item_file, key=bare)) for f in parse_fields(text_fields, default)]
                spec = TextSpec(fields, text_template)
            m += 1
            iid = r[id_col]
            if iid in catalog.described:
                raise ImportFault(f"{item_file}:{lineno}: item {iid!r} has a second row")
            catalog.described.add(iid)
            text = spec.render({bare(k): v for k, v in r.items()})
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
            "columns": cols.to_dict() | {"time_format": time_format},
            "order": "timestamp" if tcol else "file order (no timestamp column)",
        },
        "text": spec.to_dict() if spec else None,
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, keep_timestamps=tcol is not None, rows_read=n)
