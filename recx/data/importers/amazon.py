"""Amazon reviews (McAuley lab), 2014 and 2018 releases: one review per line
(``reviewerID, asin, unixReviewTime, ...``) and one product per line in the metadata file
(``asin, title, brand, categories`` (2014) / ``category`` (2018), ``description``, image URLs
``imUrl`` (2014) / ``imageURL``, ``imageURLHighRes`` (2018)).

Both files are read as a stream, plain or ``.gz``.  2018 lines are JSON; 2014 metadata lines
are Python literals (single quotes), which are parsed safely with ``ast.literal_eval``.  Image
URLs are recorded in the item metadata (``image_url``), not downloaded: items have no local
image until someone fetches them.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

from recx.data.dataset import SequenceDataset
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import fault, read_lines, require_file
from recx.data.importers.text import TextSpec, as_list_text, parse_fields

TEXT_FIELDS = ("title", "brand", "categories")


def _record(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise fault(path, lineno, "malformed row: neither JSON nor a Python dict literal") from None
    if not isinstance(rec, dict):
        raise fault(path, lineno, f"malformed row: expected an object, got {type(rec).__name__}")
    return rec


def _categories(rec: dict[str, Any]) -> list[str]:
    cats = rec.get("categories", rec.get("category")) or []
    flat: list[str] = []
    for c in cats:
        for x in c if isinstance(c, list) else [c]:
            if isinstance(x, str) and x.strip() and x not in flat:
                flat.append(x.strip())
    return flat


def _image_url(rec: dict[str, Any]) -> str | None:
    for key in ("imageURLHighRes", "imageURL", "imUrl"):
        v = rec.get(key)
        if isinstance(v, list) and v:
            return str(v[0])
        if isinstance(v, str) and v:
            return v
    return None


def import_amazon(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    items: str | os.PathLike | None = None,
    text_fields: str | None = None,
    text_template: str | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "exact",
    max_length: int = 0,
) -> SequenceDataset:
    """Import an Amazon review file (``src``) and its metadata file (``items``, optional).

    Args:
        text_fields: metadata keys joined into the text (default ``title,brand,categories``;
            ``description`` is common too).  Lists are comma-joined.
    """
    reviews = require_file(Path(src), "review file")
    refuse_existing(out_dir, force)
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    n = 0
    for lineno, line in read_lines(reviews):
        if not line.strip():
            continue
        rec = _record(line, reviews, lineno)
        n += 1
        missing = [k for k in ("reviewerID", "asin", "unixReviewTime") if k not in rec]
        if missing:
            raise fault(reviews, lineno, f"missing field {missing[0]!r}")
        try:
            t = int(rec["unixReviewTime"])
        except (TypeError, ValueError):
            raise fault(reviews, lineno, f"field 'unixReviewTime': {rec['unixReviewTime']!r} is not an integer") from None
        log.add(str(rec["reviewerID"]), str(rec["asin"]), t)
    ledger.read(reviews, n)

    spec = TextSpec(parse_fields(text_fields, TEXT_FIELDS), text_template)
    catalog = Catalog()
    meta_p = None
    if items is not None:
        meta_p = require_file(Path(items), "metadata file")
        needed = set(log.items.ids)
        m = 0
        for lineno, line in read_lines(meta_p):
            if not line.strip():
                continue
            m += 1
            # a cheap look at the asin skips unneeded products of a full dump without parsing them
            quick = _quick_asin(line)
            if quick is not None and quick not in needed:
                continue
            rec = _record(line, meta_p, lineno)
            asin = str(rec.get("asin", ""))
            if not asin:
                raise fault(meta_p, lineno, "missing field 'asin'")
            if asin not in needed:
                continue
            if asin in catalog.described:
                ledger.warnings["metadata rows repeating a product (first kept)"] += 1
                continue
            catalog.described.add(asin)
            fields = dict(rec)
            fields["categories"] = _categories(rec)
            fields["description"] = as_list_text(rec.get("description"))
            text = spec.render(fields)
            if text:
                catalog.text[asin] = text
            url = _image_url(rec)
            catalog.meta[asin] = {"image_url": url} if url else {}
            if not url:
                ledger.warnings["products without an image URL"] += 1
        ledger.read(meta_p, m)
    meta = {
        "name": reviews.name.split(".")[0],
        "source": {
            "format": "amazon",
            "path": str(reviews.parent.resolve()),
            "files": [reviews.name] + ([meta_p.name] if meta_p else []),
            "images": "URLs recorded in item meta 'image_url'; not downloaded",
        },
        "text": spec.to_dict() if meta_p else None,
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, rows_read=n)


def _quick_asin(line: str) -> str | None:
    """The value of the ``asin`` key found by text search (None if not found that way)."""
    for key, q in (('"asin": "', '"'), ("'asin': '", "'")):
        k = line.find(key)
        if k >= 0:
            end = line.find(q, k + len(key))
            if end > 0:
                return line[k + len(key) : end]
    return None
