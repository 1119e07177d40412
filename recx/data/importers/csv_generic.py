"""Generic delimited files: an interactions file with user, item and (optional) time columns,
found by their usual names unless options name them, and an optional items file whose columns
give the text (and an image path column)."""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.columns import resolve_columns
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import ImportFault, TimeParser, read_header, read_table, require_file
from recx.data.importers.text import TextSpec, parse_fields


def import_csv(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    time_format: str | None = None,
    sep: str = ",",
    items: str | os.PathLike | None = None,
    text_fields: str | None = None,
    text_template: str | None = None,
    image_col: str | None = None,
    images: str | os.PathLike | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "exact",
    max_length: int = 0,
) -> SequenceDataset:
    """Import ``src`` (CSV/TSV with a header row, CSV quoting honoured).

    Args:
        user_col / item_col / time_col: column names; each left at None is the first of its
            usual spellings in the header (``columns.SPELLINGS``).  Without a time column each
            user's rows keep file order.
        time_format: strptime format for date columns (numbers are read as seconds otherwise).
        sep: field separator; ``\\t`` for TSV.
        items: optional items file (same separator) keyed by the item column; its ``text_fields``
            (comma-separated; default: every column but the id and image column) make the text.
        image_col / images: column of the items file holding an image path, and the folder
            those paths are relative to (default: the items file's folder).
    """
    src_p = require_file(Path(src), "interactions file")
    refuse_existing(out_dir, force)
    sep = "\t" if sep in ("\\t", "tab") else sep
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger = Ledger()
    log = InteractionLog()
    parse_time = TimeParser(time_format)
    cols = resolve_columns(read_header(src_p, sep, quoted=True), src_p, user_col, item_col, time_col)
    user_col, item_col, time_col = cols.user, cols.item, cols.time
    use_time = time_col is not None
    n = 0
    for lineno, r in read_table(src_p, sep, quoted=True):
        n += 1
        user, item = r[user_col].strip(), r[item_col].strip()
        if not user or not item:
            raise ImportFault(f"{src_p}:{lineno}: empty {user_col if not user else item_col!r}")
        log.add(user, item, parse_time(r[time_col], src_p, lineno, time_col) if use_time else 0)
    ledger.read(src_p, n)

    catalog = Catalog()
    spec = None
    image_root = None
    if items is not None:
        items_p = require_file(Path(items), "items file")
        image_root = Path(images) if images else (items_p.parent if image_col else None)
        header_checked = False
        m = 0
        for lineno, r in read_table(items_p, sep, required=[item_col] + ([image_col] if image_col else []), quoted=True):
            if not header_checked:
                fields = [c for c in r if c not in (item_col, image_col)]
                spec = TextSpec(parse_fields(text_fields, fields), text_template)
                spec.check(list(r), str(items_p))
                header_checked = True
            m += 1
            iid = r[item_col].strip()
            if iid in catalog.described:
                raise ImportFault(f"{items_p}:{lineno}: item {iid!r} has a second row")
            catalog.described.add(iid)
            text = spec.render(r)
            if text:
                catalog.text[iid] = text
            if image_col and r[image_col].strip():
                rel = r[image_col].strip()
                if (image_root / rel).is_file():
                    catalog.image[iid] = rel
                else:
                    ledger.warnings["image paths that do not exist"] += 1
        ledger.read(items_p, m)
    meta = {
        "name": src_p.stem,
        "source": {
            "format": "csv",
            "path": str(src_p.resolve()),
            "files": [src_p.name] + ([Path(items).name] if items else []),
            "columns": cols.to_dict() | {"time_format": time_format},
        },
        "text": spec.to_dict() if spec else None,
    }
    if not use_time:
        meta["source"]["order"] = "file order (no time column)"
    return assemble(
        out_dir, log, filters, ledger, catalog, meta, force=force,
        image_root=image_root if image_col else None, keep_timestamps=use_time, rows_read=n,
    )
