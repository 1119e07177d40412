import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from recx.data.dataset import DatasetError, SequenceDataset
from recx.data.synth import COLOURS, draw_item_image, item_text, synthesize


def _image_hash(ds: SequenceDataset) -> str:
    h = hashlib.sha256()
    for p in ds.image_paths[1:]:
        if p is not None:
            h.update(open(p, "rb").read())
    return h.hexdigest()


def test_same_seed_same_dataset_other_seed_differs(tmp_path):
    a = synthesize(tmp_path / "a", num_items=60, num_users=30, seed=7)
    b = synthesize(tmp_path / "b", num_items=60, num_users=30, seed=7)
    c = synthesize(tmp_path / "c", num_items=60, num_users=30, seed=8)
    assert a.fingerprint == b.fingerprint
    assert _image_hash(a) == _image_hash(b)
    assert (a.path / "items.jsonl").read_bytes() == (b.path / "items.jsonl").read_bytes()
    assert c.fingerprint != a.fingerprint
    assert c.catalog_fingerprint != a.catalog_fingerprint


def test_text_and_image_show_the_same_attributes(tmp_path):
    ds = synthesize(tmp_path / "d", num_items=120, num_users=20, seed=1, image_size=64)
    checked = 0
    for i in range(1, ds.num_items + 1):
        a = ds.item_meta[i]
        if ds.texts[i] is not None:
            assert ds.texts[i] == item_text(a)
            for key in ("colour", "category", "brand", "material"):
                assert a[key] in ds.texts[i]
        if ds.image_paths[i] is not None:
            img = Image.open(ds.image_paths[i])
            assert img.size == (64, 64) and img.mode == "RGB"
            assert img.getpixel((32, 32)) == COLOURS[a["colour"]]
            assert np.array_equal(np.asarray(img), np.asarray(draw_item_image(a, 64)))
            checked += 1
    assert checked > 90


def test_image_shape_scale_follows_size_and_category():
    base = {"category": "shirt", "colour": "red", "material": "cotton", "brand": "Norda", "adjective": "classic"}
    red = np.array(COLOURS["red"])

    def area(**kw):
        arr = np.asarray(draw_item_image(base | kw, 64)).reshape(-1, 3)
        return int((arr == red).all(1).sum())

    assert area(size="S") < area(size="M") < area(size="L") < area(size="XL")
    # scarves are diamonds, shirts squares of the same half-extent: half the area
    assert area(size="M", category="scarf") < 0.6 * area(size="M")


def test_missing_modalities_are_masked_and_absent_on_disk(tmp_path):
    ds = synthesize(tmp_path / "d", num_items=400, num_users=20, seed=3)
    has_text, has_image = ds.has_text()[1:], ds.has_image()[1:]
    assert 0.02 < 1 - has_text.mean() < 0.10
    assert 0.05 < 1 - has_image.mean() < 0.16
    files = {p.name for p in (ds.path / "images").iterdir()}
    assert len(files) == has_image.sum()
    for i in range(1, ds.num_items + 1):
        assert (ds.image_paths[i] is not None) == (f"{ds.item_ids[i]}.png" in files)
    meta = json.loads((ds.path / "dataset.json").read_text())
    assert meta["counts"]["with_text"] == has_text.sum()
    assert meta["counts"]["with_image"] == has_image.sum()


def test_sequences_have_valid_lengths_and_no_repeats(tmp_path):
    ds = synthesize(tmp_path / "d", num_items=200, num_users=100, seed=0)
    lengths = np.diff(ds.offsets)
    assert lengths.min() >= 5 and lengths.max() <= 30
    for s in ds.sequences():
        assert len(set(s.tolist())) == len(s)
    assert ds.timestamps is not None
    for u in range(ds.num_users):
        assert np.all(np.diff(ds.timestamps[ds.offsets[u] : ds.offsets[u + 1]]) > 0)


def test_attributes_predict_the_next_item_better_than_popularity(tmp_path):
    ds = synthesize(tmp_path / "d", num_items=600, num_users=400, seed=0)
    cat = np.array([""] + [m["category"] for m in ds.item_meta[1:]])
    brand = np.array([""] + [m["brand"] for m in ds.item_meta[1:]])
    pop = ds.item_popularity().astype(float)
    pop[0] = -1
    hist, targets = ds.split("test")
    pop_hits = oracle_hits = 0
    for h, t in zip(hist, targets):
        last = h[-1]
        score = (cat == cat[last]) * 2.0 + (brand == brand[last]) * 2.0 + pop / (pop.max() + 1)
        score[0] = -np.inf
        score[h] = -np.inf
        popscore = pop.copy()
        popscore[h] = -np.inf
        oracle_hits += t in np.argsort(-score, kind="stable")[:10]
        pop_hits += t in np.argsort(-popscore, kind="stable")[:10]
    assert oracle_hits > 2 * pop_hits


def test_refuses_to_overwrite_without_force(tmp_path):
    synthesize(tmp_path / "d", num_items=50, num_users=5, seed=0)
    with pytest.raises(DatasetError, match="already exists"):
        synthesize(tmp_path / "d", num_items=50, num_users=5, seed=1)
    ds = synthesize(tmp_path / "d", num_items=50, num_users=5, seed=1, force=True)
    assert ds.meta["source"]["seed"] == 1


def test_too_small_catalog_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 40 items"):
        synthesize(tmp_path / "d", num_items=10, num_users=5)
