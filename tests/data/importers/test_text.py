import pytest

from recx.data.importers.reading import ImportFault
from recx.data.importers.text import TextSpec


def test_text_spec_joins_fields_and_applies_templates():
    row = {"title": "Lamp.", "brand": "Acme", "categories": ["Home", "Lighting", "Home"], "empty": " "}
    assert TextSpec(["title", "brand", "categories", "empty"]).render(row) == "Lamp. Acme. Home, Lighting."
    assert TextSpec(["title", "brand"], "{title} by {brand}").render(row) == "Lamp. by Acme"
    assert TextSpec(["empty"]).render(row) is None
    with pytest.raises(ImportFault, match=r"\{colour\}"):
        TextSpec(["title"], "{colour}").render(row)
    with pytest.raises(ImportFault, match="text field 'color' is not a column"):
        TextSpec(["color"]).check(["title", "brand"], "items.csv")
