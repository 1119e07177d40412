"""Which header columns hold the user, the item and the time: the column an option names, else
the first of the usual spellings (compared case-insensitively) that the header has."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from recx.data.importers.reading import fault

# role -> spellings, in order of preference: the first one the header has wins
SPELLINGS: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "user", "userId", "userid", "customer_id", "reviewerID", "visitorid", "uid"),
    "item": ("item_id", "item", "itemId", "itemid", "movieId", "asin", "parent_asin", "article_id", "iid"),
    "time": ("timestamp", "time", "ts", "unixReviewTime", "t_dat", "datetime", "date"),
}
OPTIONS = {"user": "--user-col", "item": "--item-col", "time": "--time-col"}

Key = Callable[[str], str]


def plain(name: str) -> str:
    return name


def bare(name: str) -> str:
    """RecBole headers carry types (``user_id:token``); options and spellings leave them off."""
    return name.split(":")[0]


@dataclass(frozen=True)
class Columns:
    user: str
    item: str
    time: str | None  # None: no time column, each user's rows keep file order
    detected: tuple[str, ...] = ()  # roles matched by spelling rather than named by an option

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "item": self.item, "time": self.time, "detected": list(self.detected)}


def columns_line(columns: dict[str, Any]) -> str:
    """``columns: user <- 'user', item <- 'item', time <- 'timestamp'`` from a recorded choice."""
    time = repr(columns["time"]) if columns.get("time") else "none (file order)"
    return f"columns: user <- {columns['user']!r}, item <- {columns['item']!r}, time <- {time}"


def find_column(header: Sequence[str], name: str, path: Path, option: str | None = None, key: Key = plain) -> str:
    """The header column ``name`` names (compared through ``key``); absent is a fault."""
    for c in header:
        if c == name or key(c) == key(name):
            return c
    by = f" given by {option}" if option else ""
    raise fault(path, 1, f"missing column {name!r}{by} (header has {', '.join(header)})")


def detect_column(header: Sequence[str], role: str, key: Key = plain) -> str | None:
    """The header column with the first spelling of ``role`` present, or None."""
    by_lower: dict[str, str] = {}
    for c in header:
        by_lower.setdefault(key(c).lower(), c)
    return next((by_lower[s.lower()] for s in SPELLINGS[role] if s.lower() in by_lower), None)


def resolve_columns(
    header: Sequence[str],
    path: Path,
    user: str | None = None,
    item: str | None = None,
    time: str | None = None,
    key: Key = plain,
) -> Columns:
    """User, item and time columns of ``header``: a given name must be there; otherwise the first
    usual spelling present.  User and item are required; without a time column rows keep file order."""
    given = {"user": user, "item": item, "time": time}
    chosen: dict[str, str | None] = {}
    for role, name in given.items():
        if name is not None:
            chosen[role] = find_column(header, name, path, OPTIONS[role], key)
            continue
        chosen[role] = detect_column(header, role, key)
        if chosen[role] is None and role != "time":
            raise fault(
                path, 1,
                f"no {role} column (header has {', '.join(header)}; tried {', '.join(SPELLINGS[role])}): "
                f"pass {OPTIONS[role]} NAME",
            )
    detected = tuple(r for r in given if given[r] is None and chosen[r] is not None)
    return Columns(chosen["user"], chosen["item"], chosen["time"], detected)  # type: ignore[arg-type]
