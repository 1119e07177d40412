import json
from pathlib import Path

import pytest

from recx.data.importers.amazon18 import import_amazon18
from recx.data.importers.reading import ImportFault
from recx.data.importers.unisrec import import_unisrec

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
ITEMS = [f"B00{i}" for i in range(6)]
# 0-based sequences; keys out of order on purpose, Ud has too few items to split.
INTER = {"2": [5, 5, 0, 3], "0": [0, 1, 2, 3, 4, 5, 1], "1": [2, 4, 1], "3": [4, 2]}
# The leave-one-out rows of INTER with histories cut to 3 items, train rows newest first (LC-Rec).
TRAIN = "0\t1 2 3\t4\n0\t0 1 2\t3\n0\t0 1\t2\n0\t0\t1\n2\t5\t5\n"
VALID = "0\t2 3 4\t5\n1\t2\t4\n2\t5 5\t0\n"
TEST = "0\t3 4 5\t1\n1\t2 4\t1\n2\t5 5 0\t3\n"
META = {
    "0": {"title": "Lamp", "brand": "Acme", "categories": "Home,Lighting", "description": ["Bright.", "Warm  light."]},
    "1": {"title": "Desk", "categories": ["Furniture", "Office"], "description": ""},
    "3": {"brand": "Acme"},
}


def write_fixture(root: Path, splits: bool = False, inter: dict | None = None, **split_text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Toy.inter.json").write_text(json.dumps(INTER if inter is None else inter, indent=1))
    (root / "Toy.item2id").write_text("".join(f"{iid}\t{k}\n" for k, iid in enumerate(ITEMS)))
    (root / "Toy.user2id").write_text("Ua 0\nUb 1\nUc 2\nUd 3\nUe 4\n")  # space separated in some forks
    (root / "Toy.item.json").write_text(json.dumps(META))
    (root / "Toy.emb-vit.npy").write_bytes(b"\x93NUMPY")
    if splits:
        for name, default in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
            (root / f"Toy.{name}.inter").write_text(HEADER + split_text.get(name, default))
    return root


def test_sequences_ids_text_and_attributes_in_index_order(tmp_path):
    ds = import_amazon18(write_fixture(tmp_path / "src"), tmp_path / "out")
    assert ds.user_ids == ["Ua", "Ub", "Uc"]  # Ud (2 items) is dropped
    assert [s.tolist() for s in ds.sequences()] == [[1, 2, 3, 4, 5, 6, 2], [3, 5, 2], [6, 6, 1, 4]]
    assert ds.item_ids[1:] == ITEMS
    assert ds.texts[1:] == [
        "title: Lamp; brand: Acme; categories: Home,Lighting; description: Bright. Warm light.",
        "title: Desk; categories: Furniture, Office",
        None,
        "brand: Acme",
        None,
        None,
    ]
    assert ds.item_meta[1] == {"title": "Lamp", "brand": "Acme", "categories": "Home,Lighting", "description": "Bright. Warm light."}
    assert ds.item_meta[2] == {"title": "Desk", "categories": "Furniture, Office"}
    assert ds.item_meta[3] == {}
    imp = ds.meta["import"]
    assert imp["rows"] == {"kept": 14, "filtered: min sequence length": 2}
    assert imp["warnings"] == {
        "users in the user map but not in Toy.inter.json": 1,  # Ue
        "items without a metadata record": 3,
        "items without text": 3,
    }
    src = ds.meta["source"]
    assert src["format"] == "amazon18" and src["prefix"] == "Toy"
    assert src["files"] == ["Toy.item2id", "Toy.user2id", "Toy.inter.json", "Toy.item.json"]
    assert src["ignored"] == ["Toy.emb-vit.npy"]
    assert src["split_source"].startswith("Toy.inter.json (leave-one-out")
    assert ds.meta["text"]["fields"] == ["title", "brand", "categories", "description"]


def test_split_files_are_reproduced_exactly(tmp_path):
    src = write_fixture(tmp_path / "src", splits=True)
    ds = import_amazon18(src, tmp_path / "out")
    assert [s.tolist() for s in ds.sequences()] == [[1, 2, 3, 4, 5, 6, 2], [3, 5, 2], [6, 6, 1, 4]]
    user_row = {u: k for k, u in enumerate(ds.user_ids)}
    users = ["Ua", "Ub", "Uc", "Ud", "Ue"]
    for split in ("valid", "test"):
        hist, targets = ds.split(split)
        lines = (src / f"Toy.{split}.inter").read_text().splitlines()[1:]
        assert len(lines) == ds.num_users
        for line in lines:
            user, given_hist, given_target = line.split("\t")
            u = user_row[users[int(user)]]
            assert targets[u] == int(given_target) + 1
            assert hist[u][-3:].tolist() == [int(x) + 1 for x in given_hist.split()]
    _, valid = ds.split("valid")
    _, test = ds.split("test")
    assert valid.tolist() == [6, 5, 1] and test.tolist() == [2, 2, 4]  # seq[-2], seq[-1]
    assert ds.meta["source"]["split_source"] == "Toy.train.inter, Toy.valid.inter, Toy.test.inter (checked against Toy.inter.json)"
    assert ds.meta["source"]["max_history"] == 3
    assert ds.meta["import"]["warnings"]["users in the user map but not in Toy.inter.json"] == 1


def test_split_files_alone_rebuild_the_sequences(tmp_path):
    src = write_fixture(tmp_path / "src", splits=True)
    (src / "Toy.inter.json").unlink()
    ds = import_amazon18(src, tmp_path / "out")
    assert [s.tolist() for s in ds.sequences()] == [[1, 2, 3, 4, 5, 6, 2], [3, 5, 2], [6, 6, 1, 4]]
    assert ds.meta["source"]["split_source"].endswith("(sequences rebuilt from them)")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"test": "0\t3 4 5\t1\n1\t2 4\t0\n2\t5 5 0\t3\n"},
            r"Toy\.test\.inter:3: user index 1: row \(history of 2 items, target 0\) is not a test row",
        ),
        (
            {"train": "0\t1 2 3\t4\n0\t0 1 2\t3\n0\t0 1\t2\n0\t0\t1\n2\t5\t4\n"},
            r"Toy\.train\.inter:6: user index 2: row .* is not a train row",
        ),
        (
            {"valid": "0\t2 3 4\t5\n1\t2\t4\n"},
            r"Toy\.valid\.inter: user index 2: 1 valid row\(s\) of the user's sequence in Toy\.inter\.json are absent",
        ),
        ({"inter": {**INTER, "1": [2, 4, 3]}}, r"Toy\.test\.inter:3: user index 1: row \(history of 2 items, target 1\)"),
    ],
)
def test_split_files_disagreeing_with_inter_json_name_file_and_user(tmp_path, change, message):
    src = write_fixture(tmp_path / "src", splits=True, inter=change.pop("inter", None), **change)
    with pytest.raises(ImportFault, match=message) as err:
        import_amazon18(src, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_item_map_names_what_exists(tmp_path):
    src = write_fixture(tmp_path / "src")
    (src / "Toy.item2id").unlink()
    with pytest.raises(ImportFault, match=(
        r"Toy\.item2id: not found \(expected Toy\.item2id or Toy\.item2index\); "
        r"found: Toy\.emb-vit\.npy, Toy\.inter\.json, Toy\.item\.json, Toy\.user2id$"
    )):
        import_amazon18(src, tmp_path / "out")
    (src / "Toy.inter.json").unlink()
    with pytest.raises(ImportFault, match=r"no \*\.inter\.json or \*\.train\.inter file .* found: Toy\.emb-vit\.npy"):
        import_amazon18(src, tmp_path / "out")


def test_item2index_naming_is_accepted(tmp_path):
    src = write_fixture(tmp_path / "src")
    (src / "Toy.item2id").rename(src / "Toy.item2index")
    (src / "Toy.user2id").rename(src / "Toy.user2index")
    ds = import_amazon18(src, tmp_path / "out")
    assert ds.item_ids[1:] == ITEMS and ds.user_ids == ["Ua", "Ub", "Uc"]
    assert ds.meta["source"]["files"][:2] == ["Toy.item2index", "Toy.user2index"]
    assert ds.meta["item_index"] == "recx index = Toy.item2index index + 1"


@pytest.mark.parametrize(
    "inter_text, message",
    [
        ('{"0": [0, 1, 2],\n "1": [2, 4 1]}', r"Toy\.inter\.json:2: malformed JSON"),
        ('{"0": [0, 1, 9]}', r"Toy\.inter\.json: user 0: item index 9 not in Toy\.item2id \(0\.\.5\)"),
        ('{"7": [0, 1, 2]}', r"Toy\.inter\.json: user index 7 not in Toy\.user2id \(0\.\.4\)"),
        ('{"0": [0, 1, 2], "0": [1, 2, 3]}', r"Toy\.inter\.json: malformed JSON object: key '0' given twice"),
        ('{"0": [0, 1], "1": [2]}', r"Toy\.inter\.json: no user has 3 or more items \(2 users, all shorter\)"),
        ('[[0, 1, 2]]', r"Toy\.inter\.json: expected a JSON object keyed by index, got a list"),
    ],
)
def test_bad_inter_json_is_one_line_naming_the_file(tmp_path, inter_text, message):
    src = write_fixture(tmp_path / "src")
    (src / "Toy.inter.json").write_text(inter_text)
    with pytest.raises(ImportFault, match=message):
        import_amazon18(src, tmp_path / "out")


def test_text_template_and_fields_use_the_shared_text_spec(tmp_path):
    src = write_fixture(tmp_path / "src")
    ds = import_amazon18(src, tmp_path / "a", text_fields="title,brand", text_template="{title} by {brand}")
    assert ds.texts[1:3] == ["Lamp by Acme", "Desk by"]
    available = r"\(available: brand, categories, description, title\)"
    with pytest.raises(ImportFault, match=r"Toy\.item\.json: text field 'colour' is not a column " + available):
        import_amazon18(src, tmp_path / "b", text_fields="title,colour")


def test_several_prefixes_need_a_name(tmp_path):
    src = write_fixture(tmp_path / "src")
    (src / "Other.inter.json").write_text("{}")
    with pytest.raises(ImportFault, match=r"several datasets \(Other, Toy\); pass --name"):
        import_amazon18(src, tmp_path / "out")
    assert import_amazon18(src, tmp_path / "out", name="Toy").num_users == 3


def test_unisrec_importer_points_at_amazon18(tmp_path):
    src = write_fixture(tmp_path / "src", splits=True)
    with pytest.raises(ImportFault, match=r"Toy\.item2index: not found, but Toy\.item2id is: .*`recx data import amazon18 "):
        import_unisrec(src, tmp_path / "out")
    for name in ("train", "valid", "test"):
        (src / f"Toy.{name}.inter").unlink()
    with pytest.raises(ImportFault, match=r"no \*\.train\.inter file .*`recx data import amazon18 "):
        import_unisrec(src, tmp_path / "out")


def test_cli_import_prints_the_summary(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from recx.cli import app

    src = write_fixture(tmp_path / "src", splits=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = CliRunner().invoke(app, ["data", "import", "amazon18", str(src), "--out", "data"])
    assert r.exit_code == 0, r.output
    assert "from Toy.inter.json" in r.output and "from Toy.train.inter" in r.output
    assert "filtered: min sequence length: 2" in r.output
    assert "warning: items without text: 3" in r.output
    assert (work / "data" / "dataset.json").is_file() and (work / "recx.toml").is_file()
