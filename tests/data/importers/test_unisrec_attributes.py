import json
from pathlib import Path

import pytest

from recx.data.dataset import Item, catalog_fingerprint
from recx.data.importers.attributes import split_attributes
from recx.data.importers.unisrec import import_unisrec

ROOT = "Industrial & Scientific"
FULL = f"PORTER-CABLE Sanding Roll, 80 Grit. {ROOT} Abrasive & Finishing Products. PORTER-CABLE. "
DOTTED = f"Mr. Heater Connector Kit 3/8 in. {ROOT} Fittings Pipe Fittings. Mr. Heater. "
NO_BRAND = f"Ancor Tinned Copper Lugs. {ROOT} Terminals. . "
NO_CATEGORY = "Schwinn Roadster Tricycle. . Schwinn. "
TWO_SEGMENTS = "Acme Gizmo, 2 Pack. Acme. "


def test_splits_title_category_brand_around_the_root_category():
    s = split_attributes([FULL, DOTTED, NO_BRAND, NO_CATEGORY, TWO_SEGMENTS, None, "  "])
    assert s.root == "Industrial &"
    assert s.attributes == [
        {"title": "PORTER-CABLE Sanding Roll, 80 Grit", "category": f"{ROOT} Abrasive & Finishing Products", "brand": "PORTER-CABLE"},
        # ". " inside the title and the brand: the category segment fixes where each one ends
        {"title": "Mr. Heater Connector Kit 3/8 in", "category": f"{ROOT} Fittings Pipe Fittings", "brand": "Mr. Heater"},
        {"title": "Ancor Tinned Copper Lugs", "category": f"{ROOT} Terminals"},
        # no root segment, three segments: split from the end, the empty category left out
        {"title": "Schwinn Roadster Tricycle", "brand": "Schwinn"},
        # no root segment, not three segments: the whole text is the title
        {"title": "Acme Gizmo, 2 Pack. Acme"},
        None,
        None,
    ]
    assert s.counts == {"items": 7, "with_text": 5, "split": 4, "title": 5, "category": 3, "brand": 3}
    assert s.summary() == (
        "attributes: title/category/brand split for 4 of 7 items (title 5, category 3, brand 3; root 'Industrial &')"
    )


def test_the_last_root_segment_is_the_category_and_a_title_may_start_with_the_root():
    text = f"{ROOT} Gloves. Size L. {ROOT} Safety. {ROOT} Safety Gloves. Acme. Inc. "
    s = split_attributes([text, FULL])
    assert s.attributes[0] == {"title": f"{ROOT} Gloves. Size L. {ROOT} Safety", "category": f"{ROOT} Safety Gloves", "brand": "Acme. Inc"}


def test_a_catalog_without_a_root_category_gets_no_attributes():
    texts = ["Blue Pen. Office Pens. Bic. ", "Paper. Office Paper. Hammermill. ", "Stapler. Desk Tools. Swingline. ", "Tape"]
    s = split_attributes(texts)  # "Office Pens"/"Office Paper": no two-word lead repeats
    assert s.root is None and s.attributes == [None] * 4
    assert s.counts == {"items": 4, "with_text": 4, "split": 0, "title": 0, "category": 0, "brand": 0}
    assert s.summary().startswith("attributes: none")
    single = split_attributes(["Pen", "Paper", None])  # one segment each (amazon-office style)
    assert single.root is None and single.attributes == [None] * 3
    assert split_attributes([]).attributes == []


def test_the_root_must_begin_a_segment_in_half_of_the_items_with_text():
    half = [FULL, DOTTED, "Lamp. Light. ", "Desk. Wood. ", None]
    assert split_attributes(half).root == "Industrial &"
    assert split_attributes(half[:-1] + ["Chair. Seat. "]).root is None


def _write_folder(root: Path, texts: dict[str, str]) -> Path:
    """A tiny UniSRec folder: 6 items (B005 without text), 3 users (sequences as in test_unisrec)."""
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    splits = {
        "train": "0\t1 2 3\t4\n0\t0 1 2\t3\n0\t0 1\t2\n0\t0\t1\n2\t5\t5\n",
        "valid": "0\t2 3 4\t5\n1\t2\t4\n2\t5 5\t0\n",
        "test": "0\t3 4 5\t1\n1\t2 4\t1\n2\t5 5 0\t3\n",
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, body in splits.items():
        (root / f"Toy.{name}.inter").write_text(header + body)
    (root / "Toy.item2index").write_text("".join(f"B00{k}\t{k}\n" for k in range(6)))
    (root / "Toy.user2index").write_text("Ua\t0\nUb\t1\nUc\t2\n")
    (root / "Toy.text").write_text("item_id:token\ttext:token_seq\n" + "".join(f"{k}\t{v}\n" for k, v in texts.items()))
    return root


SCIENTIFIC = {"B000": FULL, "B001": DOTTED, "B002": NO_BRAND, "B003": NO_CATEGORY, "B004": TWO_SEGMENTS}
# what the importer wrote for this folder before attributes existed (texts are all it hashes)
FINGERPRINTS_BEFORE = (
    "43809c65aeab2ee4321a409905e824ece414ed1e7d72a886b11442f6eb78afc8",
    "2fe2cb39f5b67df4f3b5bfa56d0fcb109521a2d25c5e93f345e799321855688e",
)


def test_import_puts_the_attributes_in_item_meta_and_leaves_text_and_fingerprints_alone(tmp_path):
    ds = import_unisrec(_write_folder(tmp_path / "src", SCIENTIFIC), tmp_path / "out")
    assert ds.item_meta[1:] == [
        {"title": "PORTER-CABLE Sanding Roll, 80 Grit", "category": f"{ROOT} Abrasive & Finishing Products", "brand": "PORTER-CABLE"},
        {"title": "Mr. Heater Connector Kit 3/8 in", "category": f"{ROOT} Fittings Pipe Fittings", "brand": "Mr. Heater"},
        {"title": "Ancor Tinned Copper Lugs", "category": f"{ROOT} Terminals"},
        {"title": "Schwinn Roadster Tricycle", "brand": "Schwinn"},
        {"title": "Acme Gizmo, 2 Pack. Acme"},
        {},
    ]
    assert ds.meta["text"] == {
        "fields": ["text"], "template": "{text}", "source_file": "Toy.text", "attributes": ["title", "category", "brand"],
    }
    texts = [v.strip() for v in SCIENTIFIC.values()] + [None]
    assert ds.texts[1:] == texts
    assert ds.catalog_fingerprint == catalog_fingerprint([Item(id=f"B00{k}", text=t) for k, t in enumerate(texts)])
    assert (ds.catalog_fingerprint, ds.fingerprint) == FINGERPRINTS_BEFORE
    row = json.loads((tmp_path / "out" / "items.jsonl").read_text().splitlines()[1])
    assert row["text"] == DOTTED.strip() and row["meta"]["brand"] == "Mr. Heater"


def test_import_of_texts_without_a_root_category_records_no_attributes(tmp_path):
    texts = {f"B00{k}": f"text of B00{k}" for k in range(5)}
    ds = import_unisrec(_write_folder(tmp_path / "src", texts), tmp_path / "out")
    assert ds.meta["text"] == {"fields": ["text"], "template": "{text}", "source_file": "Toy.text"}
    assert ds.item_meta[1:] == [{}] * 6
    assert ds.texts[1:] == [f"text of B00{k}" for k in range(5)] + [None]


@pytest.mark.realdata
def test_amazon_scientific_attributes(tmp_path, shared_data):
    src = shared_data("amazon-scientific", "Scientific.text")
    rows = dict(line.split("\t", 1) for line in (src / "Scientific.text").read_text(encoding="utf-8").splitlines()[1:])
    s = split_attributes(list(rows.values()))
    c = s.counts
    assert s.root == "Industrial &" and c["items"] == c["with_text"] == 4385
    assert c["title"] == 4385 and c["split"] >= 0.99 * c["items"]
    # the category is the root segment wherever one exists; the 134 items without one have no
    # category in the text at all (129 of them "title. . brand. ")
    assert (c["split"], c["category"], c["brand"]) == (4380, 4251, 4369)
    assert s.summary().startswith("attributes: title/category/brand split for 4,380 of 4,385 items")
    assert s.attributes[0] == {
        "title": "PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Adhesive-Backed Sanding Roll",
        "category": "Industrial & Scientific Abrasive & Finishing Products Manual Sanding Products Sanding Rolls",
        "brand": "PORTER-CABLE",
    }
    ds = import_unisrec(src, tmp_path / "sci")
    assert ds.meta["text"]["attributes"] == ["title", "category", "brand"]
    by_id = dict(zip(rows, s.attributes))
    assert ds.item_meta[1:] == [by_id[iid] for iid in ds.item_ids[1:]]
    # the catalog as imported before attributes existed: existing stores stay valid
    assert ds.catalog_fingerprint == "c125062ba908bc8cadd2f5ea42bb40be66c87d3290b58641751577e97164dcf6"
    assert ds.fingerprint == "8f539adc88d8f56c6431c3d36fb36d10219270190680af61a3b345f15089d58a"
