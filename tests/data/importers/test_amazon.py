import gzip
import json

import pytest

from recx.data.importers.amazon import import_amazon
from recx.data.importers.reading import ImportFault


def _reviews(rows):
    return "".join(json.dumps({"reviewerID": u, "asin": a, "unixReviewTime": t, "overall": 5.0}) + "\n" for u, a, t in rows)


REVIEWS = [("R1", "A1", 30), ("R1", "A2", 10), ("R1", "A3", 20), ("R2", "A1", 1), ("R2", "A3", 2), ("R2", "A1", 3)]


def test_2014_gz_reviews_and_python_literal_metadata(tmp_path):
    rev = tmp_path / "reviews_Toy_5.json.gz"
    with gzip.open(rev, "wt") as f:
        f.write(_reviews(REVIEWS))
    meta = tmp_path / "meta_Toy.json.gz"
    with gzip.open(meta, "wt") as f:
        f.write("{'asin': 'A1', 'title': \"Kid's Pen\", 'brand': 'Acme', 'categories': [['Office', 'Pens'], ['Office']], 'imUrl': 'http://x/1.jpg'}\n")
        f.write("{'asin': 'A2', 'categories': [['Office']]}\n")
        f.write("{'asin': 'A9', 'title': 'not reviewed'}\n")
    ds = import_amazon(rev, tmp_path / "o", items=meta)
    assert ds.user_ids == ["R1", "R2"]
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["A2", "A3", "A1"], ["A1", "A3", "A1"]]
    assert ds.texts[ds.index_of("A1")] == "Kid's Pen. Acme. Office, Pens."
    assert ds.texts[ds.index_of("A2")] == "Office."
    assert ds.texts[ds.index_of("A3")] is None
    assert ds.item_meta[ds.index_of("A1")] == {"image_url": "http://x/1.jpg"}
    assert not ds.has_image().any()
    w = ds.meta["import"]["warnings"]
    assert w == {"products without an image URL": 1, "items without a metadata row": 1, "items without text": 1}
    assert ds.meta["import"]["rows"] == {"kept": 6}


def test_2018_json_metadata_with_template_and_kcore(tmp_path):
    rev = tmp_path / "Toy.json"
    extra = [("R3", "A4", 1), ("R3", "A1", 2), ("R3", "A3", 3), ("R4", "A3", 1), ("R4", "A1", 2), ("R4", "A3", 3)]
    rev.write_text(_reviews(REVIEWS + extra))
    meta = tmp_path / "meta_Toy.json"
    meta.write_text(
        json.dumps({"category": ["Toys", "Cars"], "title": "Racer", "brand": "Zoom", "asin": "A1", "imageURLHighRes": ["http://h/1.jpg"]}) + "\n"
        + json.dumps({"title": "Basin", "asin": "A3"}) + "\n"
    )
    ds = import_amazon(rev, tmp_path / "o", items=meta, text_fields="title,brand", text_template="{title} by {brand}", k_core=2)
    assert ds.item_ids[1:] == ["A1", "A3"]
    assert ds.texts[1:] == ["Racer by Zoom", "Basin by"]
    assert ds.item_meta[1]["image_url"] == "http://h/1.jpg"
    rows = ds.meta["import"]["rows"]
    assert ds.user_ids == ["R2", "R4"]
    assert rows["kept"] == 6 and sum(rows.values()) == 12


def test_malformed_review_lines(tmp_path):
    rev = tmp_path / "r.json"
    rev.write_text(_reviews(REVIEWS[:2]) + "{not json\n")
    with pytest.raises(ImportFault, match=r"r\.json:3: malformed row"):
        import_amazon(rev, tmp_path / "o")
    rev.write_text('{"reviewerID": "R1", "asin": "A1"}\n')
    with pytest.raises(ImportFault, match=r"r\.json:1: missing field 'unixReviewTime'"):
        import_amazon(rev, tmp_path / "o")
