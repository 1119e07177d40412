"""Title, category and brand out of UniSRec-style item texts ("title. category. brand. ").

UniSRec joined each item's fields as sentences and skipped the missing ones, and titles may
contain ". " themselves, so the fields cannot be told apart by position alone.  The category is
what gives them away: every category path of a catalog starts with the same root
("Industrial & Scientific ...").  The root is found per catalog, then each item's text is split
around its category segment.  Nothing here reads files: the importer passes the texts in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

ATTRIBUTES = ("title", "category", "brand")
SEP = ". "
ROOT_WORDS = 2  # the root is a segment's first two words ("Industrial &")
ROOT_SHARE = 0.5  # ... and must begin a segment in at least this share of the items with text


@dataclass
class AttributeSplit:
    """The attributes of one catalog's items.

    ``attributes[k]`` belongs to ``texts[k]``: the fields found (non-empty strings, keys in
    :data:`ATTRIBUTES`), or None for an item without text, and for every item when the catalog
    has no root category (``root`` is None; the caller then keeps the single text field).
    ``counts``: ``items`` (texts given), ``with_text``, ``split`` (items given more than a title),
    and per attribute the items that have it.
    """

    root: str | None
    attributes: list[dict[str, str] | None]
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line, e.g. ``attributes: title/category/brand split for 4,380 of 4,385 items (...)``."""
        c = self.counts
        if self.root is None:
            return f"attributes: none (no root category begins a segment in half of the {c.get('with_text', 0):,} items with text)"
        per = ", ".join(f"{a} {c.get(a, 0):,}" for a in ATTRIBUTES)
        return f"attributes: {'/'.join(ATTRIBUTES)} split for {c['split']:,} of {c['items']:,} items ({per}; root {self.root!r})"


def split_attributes(texts: Sequence[str | None]) -> AttributeSplit:
    """Split every item text of one catalog into title, category and brand.

    Each text is cut into segments on ". " (a trailing "." or space is dropped first).  The
    catalog's root category is the most common first two words among the segments after the
    first; it counts only if it begins such a segment in at least half of the items with text.
    An item with a segment (not its first) starting with the root gets that segment as its
    category (the last one if several), the segments before it as title and those after it as
    brand (each joined with ". ").  Other items: exactly three segments are title, category,
    brand; anything else is kept whole as the title.  Empty fields are left out.

    Example:
        >>> s = split_attributes([
        ...     "Mr. Heater Hose. Industrial & Scientific Fittings. Mr. Heater. ",
        ...     "Sanding Roll. Industrial & Scientific Abrasives. ",
        ...     "Duct Tape. . Nashua. ",
        ... ])
        >>> s.root
        'Industrial &'
        >>> s.attributes[0]
        {'title': 'Mr. Heater Hose', 'category': 'Industrial & Scientific Fittings', 'brand': 'Mr. Heater'}
        >>> s.attributes[1], s.attributes[2]
        ({'title': 'Sanding Roll', 'category': 'Industrial & Scientific Abrasives'}, {'title': 'Duct Tape', 'brand': 'Nashua'})
    """
    cut = [segments(t) if t and t.strip() else None for t in texts]
    present = [s for s in cut if s is not None]
    root = find_root(present)
    attributes = [None if s is None or root is None else split_item(s, root) for s in cut]
    return AttributeSplit(root, attributes, _count(attributes, len(texts), len(present)))


def segments(text: str) -> list[str]:
    """``text`` without its trailing "."/spaces, cut on ". ", each segment stripped."""
    return [s.strip() for s in text.strip().rstrip(". ").split(SEP)]


def lead(segment: str) -> str:
    """A segment's first :data:`ROOT_WORDS` words, single-spaced."""
    return " ".join(segment.split()[:ROOT_WORDS])


def find_root(cut: Sequence[Sequence[str]]) -> str | None:
    """The most common lead of the non-first segments, if it begins one in >= ROOT_SHARE of the items."""
    starts: Counter = Counter()
    for segs in cut:
        starts.update({lead(s) for s in segs[1:] if s})
    if not starts:
        return None
    root, n = starts.most_common(1)[0]
    return root if n >= ROOT_SHARE * len(cut) else None


def split_item(segs: Sequence[str], root: str) -> dict[str, str]:
    """The fields of one item's segments (see :func:`split_attributes`)."""
    hits = [k for k in range(1, len(segs)) if lead(segs[k]) == root]
    if hits:
        k = hits[-1]
        fields = {"title": _join(segs[:k]), "category": segs[k], "brand": _join(segs[k + 1 :])}
    elif len(segs) == 3:
        fields = dict(zip(ATTRIBUTES, segs))
    else:
        fields = {"title": _join(segs)}
    return {name: value for name, value in fields.items() if value}


def _join(segs: Sequence[str]) -> str:
    """Segments joined with ". ", empty ones at either end dropped (the middle kept as written)."""
    parts = list(segs)
    while parts and not parts[-1]:
        parts.pop()
    while parts and not parts[0]:
        parts.pop(0)
    return SEP.join(parts)


def _count(attributes: Sequence[dict[str, str] | None], items: int, with_text: int) -> dict[str, int]:
    found = [a for a in attributes if a is not None]
    counts = {"items": items, "with_text": with_text, "split": sum(1 for a in found if any(k != "title" for k in a))}
    counts.update({name: sum(1 for a in found if name in a) for name in ATTRIBUTES})
    return counts
