"""MIND (Microsoft News): ``news.tsv`` and ``behaviors.tsv``, tab separated, no header.

A user's sequence is the click history of their earliest impression (MIND gives it in click
order but without times: those clicks are stamped one second before that impression), then the
clicked news (``N123-1``) of all their impressions in time order (ties in file order).  Later
impressions repeat the history; the repeat is counted, not re-added.  News ids missing from
``news.tsv`` (common in fragments) are skipped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import ImportFault, TimeParser, fault, read_table, require_file
from recx.data.importers.text import TextSpec, parse_fields

NEWS_COLUMNS = ("news_id", "category", "subcategory", "title", "abstract", "url", "title_entities", "abstract_entities")
BEHAVIOR_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def import_mind(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    text_fields: str | None = None,
    text_template: str | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "none",  # history clicks share one synthetic time, so (user, item, time) cannot tell a re-read from a copied row
    max_length: int = 0,
) -> SequenceDataset:
    """Import a MIND folder (``news.tsv``, ``behaviors.tsv``).

    Args:
        text_fields: news columns joined into the text (default ``title,abstract``; also
            ``category``, ``subcategory``).
    """
    src_p = Path(src)
    if not src_p.is_dir():
        raise ImportFault(f"{src_p}: not a directory (expected news.tsv and behaviors.tsv)")
    refuse_existing(out_dir, force)
    news_p = require_file(src_p / "news.tsv", "news.tsv")
    beh_p = require_file(src_p / "behaviors.tsv", "behaviors.tsv")
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    spec = TextSpec(parse_fields(text_fields, ("title", "abstract")), text_template)
    spec.check(NEWS_COLUMNS, str(news_p))

    catalog = Catalog()
    n = 0
    for lineno, r in read_table(news_p, "\t", header=False, columns=NEWS_COLUMNS):
        n += 1
        nid = r["news_id"]
        if nid in catalog.described:
            raise fault(news_p, lineno, f"news {nid!r} has a second row")
        catalog.described.add(nid)
        text = spec.render(r)
        if text:
            catalog.text[nid] = text
        catalog.meta[nid] = {"category": r["category"], "subcategory": r["subcategory"]}
    ledger.read(news_p, n)

    parse_time = TimeParser(TIME_FORMAT)
    # pass 1: each user's earliest impression (time, line): its history starts the sequence
    first: dict[str, tuple[int, int]] = {}
    rows = 0
    for lineno, r in read_table(beh_p, "\t", header=False, columns=BEHAVIOR_COLUMNS):
        rows += 1
        key = (parse_time(r["time"], beh_p, lineno, "time"), lineno)
        if r["user_id"] not in first or key < first[r["user_id"]]:
            first[r["user_id"]] = key
    ledger.read(beh_p, rows)

    candidates = 0
    not_clicked = 0
    for lineno, r in read_table(beh_p, "\t", header=False, columns=BEHAVIOR_COLUMNS):
        user = r["user_id"]
        t = parse_time(r["time"], beh_p, lineno, "time")
        history = r["history"].split()
        candidates += len(history)
        if first[user][1] == lineno:
            for nid in history:
                if nid in catalog.described:
                    log.add(user, nid, first[user][0] - 1)
                else:
                    ledger.outcomes["skipped: history click on news not in news.tsv"] += 1
        else:
            ledger.outcomes["skipped: history repeated by a later impression"] += len(history)
        for imp in r["impressions"].split():
            nid, sep, label = imp.rpartition("-")
            if not sep or label not in ("0", "1"):
                raise fault(beh_p, lineno, f"impression {imp!r} is not NEWSID-0 or NEWSID-1")
            if label == "0":
                not_clicked += 1
                continue
            candidates += 1
            if nid in catalog.described:
                log.add(user, nid, t)
            else:
                ledger.outcomes["skipped: click on news not in news.tsv"] += 1
    meta = {
        "name": src_p.name,
        "source": {
            "format": "mind",
            "path": str(src_p.resolve()),
            "files": ["news.tsv", "behaviors.tsv"],
            "impressions_not_clicked": not_clicked,
            "order": "earliest impression's history (stamped 1 s before it), then clicks by impression time",
        },
        "text": spec.to_dict(),
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, rows_read=candidates)
