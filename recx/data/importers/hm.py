"""H&M Personalized Fashion (Kaggle): ``transactions_train*.csv`` (``t_dat, customer_id,
article_id, price, sales_channel_id``), ``articles*.csv`` (product name, type, colour, ...,
``detail_desc``) and ``images/<first 3 digits>/<article_id>.jpg``.

Dates have day resolution, so a customer's purchases on one day keep their file order, and a
repeat purchase of the same article on the same day (a repeated row) is dropped by default
(``dedup="exact"``, the default of every importer).  Articles without metadata or image are normal (counted, masked).
"""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import ImportFault, TimeParser, read_table, require_file
from recx.data.importers.text import TextSpec, parse_fields

TEXT_FIELDS = ("prod_name", "product_type_name", "colour_group_name", "graphical_appearance_name", "section_name", "detail_desc")


def _one(src: Path, pattern: str, what: str) -> Path:
    found = sorted(src.glob(pattern))
    if not found:
        raise ImportFault(f"{src}: no {what} file ({pattern})")
    if len(found) > 1:
        raise ImportFault(f"{src}: several {what} files ({', '.join(p.name for p in found)})")
    return found[0]


def import_hm(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    images: str | os.PathLike | None = None,
    text_fields: str | None = None,
    text_template: str | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "exact",
    max_length: int = 0,
) -> SequenceDataset:
    """Import an H&M folder (full Kaggle data or a sample with the same file names).

    Args:
        images: image folder (default ``SRC/images``); paths are ``<3 digits>/<article_id>.jpg``.
        text_fields: article columns joined into the text (default: name, type, colour,
            appearance, section, description).
    """
    src_p = Path(src)
    if not src_p.is_dir():
        raise ImportFault(f"{src_p}: not a directory (expected transactions_train*.csv, articles*.csv, images/)")
    refuse_existing(out_dir, force)
    tx = _one(src_p, "transactions_train*.csv", "transactions")
    art = _one(src_p, "articles*.csv", "articles")
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    day = TimeParser("%Y-%m-%d")
    n = 0
    for lineno, r in read_table(require_file(tx, "transactions"), ",", required=("t_dat", "customer_id", "article_id")):
        n += 1
        log.add(r["customer_id"], r["article_id"].strip(), day(r["t_dat"], tx, lineno, "t_dat"))
    ledger.read(tx, n)

    needed = set(log.items.ids)
    img_root = Path(images) if images else src_p / "images"
    if not img_root.is_dir():
        ledger.warnings[f"no image folder {img_root.name}/: items have no image"] += 1
        img_root_used = None
    else:
        img_root_used = img_root
    catalog, spec = Catalog(), None
    m = 0
    for lineno, r in read_table(require_file(art, "articles"), ",", required=("article_id",), quoted=True):
        if spec is None:
            spec = TextSpec(parse_fields(text_fields, TEXT_FIELDS), text_template)
            spec.check(list(r), str(art))
        m += 1
        aid = r["article_id"].strip()
        if aid not in needed:
            continue
        if aid in catalog.described:
            raise ImportFault(f"{art}:{lineno}: article {aid!r} has a second row")
        catalog.described.add(aid)
        text = spec.render(r)
        if text:
            catalog.text[aid] = text
        catalog.meta[aid] = {k: r[k] for k in ("product_type_name", "colour_group_name", "department_name") if k in r}
    ledger.read(art, m)
    ledger.warnings["article rows for articles never bought"] += m - len(catalog.described)
    if img_root_used is not None:
        for aid in needed:
            rel = f"{aid[:3]}/{aid}.jpg"
            if (img_root_used / rel).is_file():
                catalog.image[aid] = rel
    meta = {
        "name": "hm",
        "source": {
            "format": "hm",
            "path": str(src_p.resolve()),
            "files": [tx.name, art.name],
            "images": str(img_root_used.resolve()) if img_root_used else None,
            "time": "t_dat (day resolution); same-day purchases keep file order",
        },
        "text": spec.to_dict() if spec else None,
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, image_root=img_root_used, rows_read=n)
