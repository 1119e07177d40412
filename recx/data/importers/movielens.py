"""MovieLens: ml-100k (``u.data``, ``u.item``, ``u.genre``) or ml-1m (``ratings.dat``,
``movies.dat``), original GroupLens files (latin-1).

Text is ``Title (year). Genres: A, B.`` plus, when a TMDB csv is given (``movie_id``,
``overview``; ``items_tmdb.csv`` next to the ratings is picked up by default), the plot
overview.  Movie ids repeat in that csv: the first row with a non-empty overview wins (file
order, so the choice is deterministic).  Posters ``DIR/<movie_id>.jpg`` come from ``images``
(``posters/`` next to the ratings by default); movies without one have no image.
"""

from __future__ import annotations

import os
from pathlib import Path

from recx.data.dataset import SequenceDataset
from recx.data.importers.pipeline import Catalog, Filters, InteractionLog, Ledger, assemble, refuse_existing
from recx.data.importers.reading import (
    ImportFault,
    fault,
    parse_float,
    parse_int,
    read_lines,
    read_table,
    require_file,
)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


def _read_ratings(path: Path, sep: str, encoding: str, log: InteractionLog, ledger: Ledger, min_rating: float | None) -> int:
    n = 0
    for lineno, line in read_lines(path, encoding):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != 4:
            raise fault(path, lineno, f"malformed row: expected 4 {sep!r}-separated fields (user, item, rating, timestamp), got {len(parts)}")
        n += 1
        user, item, rating, ts = parts
        parse_int(user, path, lineno, "user")
        parse_int(item, path, lineno, "item")
        if min_rating is not None and parse_float(rating, path, lineno, "rating") < min_rating:
            ledger.outcomes[f"skipped: rating below {min_rating:g}"] += 1
            continue
        log.add(user, item, parse_int(ts, path, lineno, "timestamp"))
    ledger.read(path, n)
    return n


def _read_movies_100k(path: Path, genre_names: tuple[str, ...], catalog: dict[str, dict], ledger: Ledger) -> None:
    n = 0
    for lineno, line in read_lines(path, "latin-1"):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 5 + len(genre_names):
            raise fault(path, lineno, f"malformed row: expected {5 + len(genre_names)} '|'-separated fields, got {len(parts)}")
        n += 1
        genres = [g for g, flag in zip(genre_names, parts[5:]) if flag.strip() == "1"]
        catalog[parts[0]] = {"title": parts[1].strip(), "genres": genres, "release_date": parts[2].strip()}
    ledger.read(path, n)


def _read_movies_1m(path: Path, catalog: dict[str, dict], ledger: Ledger) -> None:
    n = 0
    for lineno, line in read_lines(path, "latin-1"):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise fault(path, lineno, f"malformed row: expected 3 '::'-separated fields (id, title, genres), got {len(parts)}")
        n += 1
        catalog[parts[0]] = {"title": parts[1].strip(), "genres": [g for g in parts[2].split("|") if g]}
    ledger.read(path, n)


def _read_genre_names(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ML100K_GENRES
    names = {}
    for lineno, line in read_lines(path, "latin-1"):
        if line.strip():
            name, _, idx = line.rpartition("|")
            names[parse_int(idx, path, lineno, "genre index")] = name
    return tuple(names[k] for k in sorted(names))


def _read_tmdb(path: Path, ledger: Ledger) -> dict[str, str]:
    overview: dict[str, str] = {}
    n = 0
    for _, r in read_table(require_file(path, "TMDB csv"), ",", required=("movie_id", "overview"), quoted=True):
        n += 1
        mid = r["movie_id"].strip()
        text = " ".join(r["overview"].split())
        if mid in overview or not text:
            if mid in overview:
                ledger.warnings["TMDB rows repeating a movie id (first overview kept)"] += 1
            continue
        overview[mid] = text
    ledger.read(path, n)
    return overview


def movie_text(row: dict, overview: str | None) -> str:
    """``Title (year). Genres: A, B. Overview``."""
    parts = [row["title"].rstrip(". ")]
    if row.get("genres"):
        parts.append("Genres: " + ", ".join(row["genres"]))
    if overview:
        parts.append(overview.rstrip(". "))
    return ". ".join(parts) + "."


def import_movielens(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    tmdb: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    min_rating: float | None = None,
    k_core: int = 0,
    min_length: int = 3,
    dedup: str = "exact",
    max_length: int = 0,
) -> SequenceDataset:
    """Import an ml-100k or ml-1m folder; every rating is an interaction unless ``min_rating``.

    Args:
        tmdb: csv with ``movie_id`` and ``overview`` (default: ``SRC/items_tmdb.csv`` if present).
        images: folder of ``<movie_id>.jpg`` posters (default: ``SRC/posters`` if present).
    """
    src_p = Path(src)
    if not src_p.is_dir():
        raise ImportFault(f"{src_p}: not a directory (expected ml-100k u.data/u.item or ml-1m ratings.dat/movies.dat)")
    refuse_existing(out_dir, force)
    filters = Filters(k_core=k_core, min_length=min_length, dedup=dedup, max_length=max_length)
    ledger, log = Ledger(), InteractionLog()
    movies: dict[str, dict] = {}
    if (src_p / "u.data").exists():
        variant = "ml-100k"
        rows = _read_ratings(src_p / "u.data", "\t", "latin-1", log, ledger, min_rating)
        _read_movies_100k(require_file(src_p / "u.item", "u.item"), _read_genre_names(src_p / "u.genre"), movies, ledger)
        files = ["u.data", "u.item"]
    elif (src_p / "ratings.dat").exists():
        variant = "ml-1m"
        rows = _read_ratings(src_p / "ratings.dat", "::", "latin-1", log, ledger, min_rating)
        _read_movies_1m(require_file(src_p / "movies.dat", "movies.dat"), movies, ledger)
        files = ["ratings.dat", "movies.dat"]
    else:
        raise ImportFault(f"{src_p}: neither u.data (ml-100k) nor ratings.dat (ml-1m) found")

    tmdb_p = Path(tmdb) if tmdb else (src_p / "items_tmdb.csv" if (src_p / "items_tmdb.csv").exists() else None)
    overview = _read_tmdb(tmdb_p, ledger) if tmdb_p else {}
    img_p = Path(images) if images else (src_p / "posters" if (src_p / "posters").is_dir() else None)
    if img_p is not None and not img_p.is_dir():
        raise ImportFault(f"{img_p}: poster folder not found")
    posters = {p.stem for p in img_p.glob("*.jpg")} if img_p else set()

    catalog = Catalog()
    for mid, row in movies.items():
        catalog.described.add(mid)
        catalog.text[mid] = movie_text(row, overview.get(mid))
        catalog.meta[mid] = {"title": row["title"], "genres": row["genres"]}
        if mid in posters:
            catalog.image[mid] = f"{mid}.jpg"
    if overview:
        ledger.warnings["movies without a TMDB overview"] += sum(1 for m in movies if m not in overview)
    meta = {
        "name": variant,
        "source": {
            "format": "movielens",
            "variant": variant,
            "path": str(src_p.resolve()),
            "files": files + ([str(tmdb_p)] if tmdb_p else []),
            "images": str(img_p.resolve()) if img_p else None,
            "min_rating": min_rating,
            "encoding": "latin-1",
        },
        "text": {
            "fields": ["title", "genres"] + (["overview"] if tmdb_p else []),
            "template": "{title}. Genres: {genres}." + (" {overview}." if tmdb_p else ""),
            "tmdb_duplicates": "first row with a non-empty overview, in file order",
        },
    }
    return assemble(out_dir, log, filters, ledger, catalog, meta, force=force, image_root=img_p, rows_read=rows)
