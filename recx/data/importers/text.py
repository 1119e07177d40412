"""Item text from metadata fields: joined as sentences, or through a format template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from recx.data.importers.reading import ImportFault


@dataclass
class TextSpec:
    """How an item's text is made from its metadata fields.

    Without a template, the non-empty fields are joined in order as sentences
    ("Title. Brand. Categories."), or as ``field: value`` pairs ("title: Lamp; brand: Acme") when
    ``labelled``; with one, ``template.format_map(fields)`` (``{title} by {brand}``).
    """

    fields: Sequence[str]
    template: str | None = None
    labelled: bool = False

    def render(self, row: dict[str, Any]) -> str | None:
        if self.template is not None:
            values = {k: as_text(row.get(k)) for k in self.fields}
            if not any(values.values()):
                return None
            text = self.template.format_map(_Blank(values)).strip()
            return text or None
        if self.labelled:
            pairs = [(k, as_text(row.get(k))) for k in self.fields]
            return "; ".join(f"{k}: {v}" for k, v in pairs if v) or None
        parts: list[str] = []
        for k in self.fields:
            p = as_text(row.get(k)).rstrip(". ")
            if p and p not in parts:  # MIND abstracts often repeat the title
                parts.append(p)
        return ". ".join(parts) + "." if parts else None

    def check(self, available: Sequence[str], where: str) -> None:
        """Every field must be a column of the metadata; the message lists what exists."""
        missing = [f for f in self.fields if f not in available]
        if missing:
            raise ImportFault(f"{where}: text field {missing[0]!r} is not a column (available: {', '.join(available)})")

    def to_dict(self) -> dict[str, Any]:
        out = {"fields": list(self.fields), "template": self.template, "join": None if self.template else ". "}
        if self.labelled and not self.template:
            out.update(join="; ", pair="{field}: {value}")
        return out


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        raise ImportFault(f"text template names {{{key}}}, which is not among the text fields")


def as_list_text(v: Any) -> str:
    """A list of paragraphs (Amazon descriptions) -> one space-joined text; a scalar as text."""
    if isinstance(v, list):
        return " ".join(str(x) for x in v if x)
    return str(v) if v else ""


def as_text(v: Any) -> str:
    """Metadata value -> text: lists are flattened and comma-joined, whitespace collapsed."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        flat: list[str] = []
        for x in v:
            s = as_text(x)
            if s and s not in flat:
                flat.append(s)
        return ", ".join(flat)
    s = " ".join(str(v).split())
    return "" if s.lower() in ("nan", "none") else s


def parse_fields(value: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """``"title,brand"`` -> ``["title", "brand"]``; None -> default."""
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    return list(value)
