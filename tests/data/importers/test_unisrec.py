import os
from pathlib import Path

import pytest

from recx.data.dataset import DatasetError
from recx.data.importers.reading import ImportFault
from recx.data.importers.unisrec import import_unisrec

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

# Histories are cut to 3 items.  Full 0-based sequences:
#   u0: 0 1 2 3 4 5 1   (train rows newest first; two train histories of length 3 tie)
#   u1: 2 4 1           (no train rows)
#   u2: 5 5 0 3         (a repeat)
TRAIN = "0\t1 2 3\t4\n0\t0 1 2\t3\n0\t0 1\t2\n0\t0\t1\n2\t5\t5\n"
VALID = "0\t2 3 4\t5\n1\t2\t4\n2\t5 5\t0\n"
TEST = "0\t3 4 5\t1\n1\t2 4\t1\n2\t5 5 0\t3\n"
ITEMS = [f"B00{i}" for i in range(6)]


def write_fixture(root: Path, train=TRAIN, valid=VALID, test=TEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Toy.train.inter").write_text(HEADER + train)
    (root / "Toy.valid.inter").write_text(HEADER + valid)
    (root / "Toy.test.inter").write_text(HEADER + test)
    (root / "Toy.item2index").write_text("".join(f"{iid}\t{k}\n" for k, iid in enumerate(ITEMS)))
    (root / "Toy.user2index").write_text("Ua\t0\nUb\t1\nUc\t2\nUd\t3\n")
    texts = "".join(f"{iid}\ttext of {iid} \n" for iid in ITEMS[:5]) + "ZZZ\tstray\n"
    (root / "Toy.text").write_text("item_id:token\ttext:token_seq\n" + texts)
    return root


def test_rebuilds_full_sequences_and_reproduces_the_split(tmp_path):
    ds = import_unisrec(write_fixture(tmp_path / "src"), tmp_path / "out")
    assert ds.user_ids == ["Ua", "Ub", "Uc"]  # Ud has no rows
    assert [s.tolist() for s in ds.sequences()] == [[1, 2, 3, 4, 5, 6, 2], [3, 5, 2], [6, 6, 1, 4]]
    assert ds.item_ids[1:] == ITEMS
    assert ds.texts[1:] == [f"text of {i}" for i in ITEMS[:5]] + [None]
    _, valid = ds.split("valid")
    _, test = ds.split("test")
    assert valid.tolist() == [6, 5, 1] and test.tolist() == [2, 2, 4]
    imp = ds.meta["import"]
    assert imp["rows"] == {"kept": 11}
    assert imp["warnings"] == {
        "text rows for items not in item2index": 1,
        "users in user2index without rows": 1,
        "items without text": 1,
    }
    assert ds.meta["source"]["format"] == "unisrec" and ds.meta["source"]["max_history"] == 3
    assert ds.meta["counts"] == {"users": 3, "items": 6, "interactions": 14, "with_text": 5, "with_image": 0}


def test_a_wrong_history_is_an_error_naming_file_and_line(tmp_path):
    src = write_fixture(tmp_path / "src", valid="0\t2 0 4\t5\n1\t2\t4\n2\t5 5\t0\n")
    with pytest.raises(ImportFault, match=r"Toy\.valid\.inter:2: history of 3 items"):
        import_unisrec(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_wrong_valid_target_is_reported_against_the_test_row(tmp_path):
    src = write_fixture(tmp_path / "src", valid="0\t2 3 4\t0\n1\t2\t4\n2\t5 5\t0\n")
    with pytest.raises(ImportFault, match=r"Toy\.test\.inter:2: history ends with item 5 but the valid row \(Toy\.valid\.inter:2\) has target 0"):
        import_unisrec(src, tmp_path / "out")


def test_a_train_row_cut_to_the_wrong_length_is_an_error(tmp_path):
    # the row predicting item 3 must carry the whole (uncut) history 0 1 2
    src = write_fixture(tmp_path / "src", train="0\t1 2 3\t4\n0\t1 2\t3\n0\t0 1\t2\n0\t0\t1\n2\t5\t5\n")
    with pytest.raises(ImportFault, match=r"Toy\.train\.inter:3: history of 2 items"):
        import_unisrec(src, tmp_path / "out")


@pytest.mark.parametrize(
    "valid, message",
    [
        ("0\t2 3 4\n", r"Toy\.valid\.inter:2: malformed row: expected 3 fields"),
        ("0\t2 3 x\t5\n", r"Toy\.valid\.inter:2: column 'item_id_list:token_seq': not a list of integers"),
        ("0\t2 3 4\t9\n", r"Toy\.valid\.inter:2: item index 9 outside 0\.\.5"),
        ("7\t2 3 4\t5\n", r"Toy\.valid\.inter:2: user index 7 outside 0\.\.3"),
        ("0\t2 3 4\t5\n1\t2\t4\n2\t5 5\t0\n" + HEADER, r"Toy\.valid\.inter:5: header line repeated"),
        ("0\t2 3 4\t5\n1\t2\t4\n", r"Toy\.valid\.inter: user index 2 has 0 valid rows"),
        ("0\t2 3 4\t5\n1\t2\t4\n2\t5 5\t0\n2\t5 5\t0\n", r"Toy\.valid\.inter:5: user index 2 has 2 valid rows"),
    ],
)
def test_corrupted_valid_files_are_reported(tmp_path, valid, message):
    src = write_fixture(tmp_path / "src", valid=valid)
    with pytest.raises(ImportFault, match=message):
        import_unisrec(src, tmp_path / "out")


def test_missing_column_empty_file_and_bad_encoding(tmp_path):
    src = write_fixture(tmp_path / "src")
    (src / "Toy.test.inter").write_text("user_id:token\titem_id:token\n0\t1\n")
    with pytest.raises(ImportFault, match=r"Toy\.test\.inter:1: missing column 'item_id_list:token_seq'"):
        import_unisrec(src, tmp_path / "out")
    (src / "Toy.test.inter").write_text("")
    with pytest.raises(ImportFault, match=r"Toy\.test\.inter: empty file"):
        import_unisrec(src, tmp_path / "out")
    write_fixture(src)
    (src / "Toy.text").write_bytes(b"item_id:token\ttext:token_seq\nB000\tcaf\xe9\n")
    with pytest.raises(ImportFault, match=r"Toy\.text:2: not valid utf-8"):
        import_unisrec(src, tmp_path / "out")


def test_refuses_existing_output_and_finds_no_dataset(tmp_path):
    src = write_fixture(tmp_path / "src")
    import_unisrec(src, tmp_path / "out")
    with pytest.raises(DatasetError, match="already exists"):
        import_unisrec(src, tmp_path / "out")
    assert import_unisrec(src, tmp_path / "out", force=True).num_users == 3
    with pytest.raises(ImportFault, match=r"no \*\.train\.inter"):
        import_unisrec(tmp_path / "out", tmp_path / "out2")


def _shared_data() -> Path:
    env = os.environ.get("RECX_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.mark.realdata
def test_amazon_scientific_counts_and_split(tmp_path):
    src = _shared_data() / "amazon-scientific"
    if not (src / "Scientific.train.inter").is_file():
        pytest.skip(f"{src} not present")
    ds = import_unisrec(src, tmp_path / "sci")
    assert (ds.num_users, ds.num_items, ds.items.size) == (8442, 4385, 59427)
    user_of = {int(k): v for v, k in (ln.split("\t") for ln in (src / "Scientific.user2index").read_text().splitlines())}
    for split in ("valid", "test"):
        hist, targets = ds.split(split)
        lines = (src / f"Scientific.{split}.inter").read_text().splitlines()[1:]
        assert len(lines) == ds.num_users
        for u, (line, h, t) in enumerate(zip(lines, hist, targets)):
            user, given_hist, given_target = line.split("\t")
            assert ds.user_ids[u] == user_of[int(user)]
            given = [int(x) + 1 for x in given_hist.split()]
            assert int(given_target) + 1 == t
            assert h[-len(given):].tolist() == given and len(given) == min(len(h), 50)


def test_cli_import_prints_the_ledger_and_points_the_workspace(tmp_path):
    from typer.testing import CliRunner

    from recx.cli import app
    from recx.workspace import Workspace

    src = write_fixture(tmp_path / "src")
    r = CliRunner().invoke(app, ["data", "import", "unisrec", str(src), "--out", str(tmp_path / "d"), "--workspace", str(tmp_path)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "input rows read: 5 from Toy.train.inter" in lines
    assert "input rows: 11 (kept 11)" in lines and "warning: items without text: 1" in lines
    assert Workspace.load(tmp_path).dataset_dir.resolve() == (tmp_path / "d").resolve()


def test_the_summary_leads_with_the_datasets_own_counts(tmp_path):
    from typer.testing import CliRunner

    from recx.cli import app
    from recx.data.cli import summary_lines
    from recx.data.dataset import SequenceDataset

    src = write_fixture(tmp_path / "src")
    r = CliRunner().invoke(app, ["data", "import", "unisrec", str(src), "--out", str(tmp_path / "d"), "--workspace", str(tmp_path)])
    assert r.exit_code == 0, r.output
    ds = SequenceDataset(tmp_path / "d")
    counts = (ds.num_users, ds.num_items, ds.items.size, ds.items.size / ds.num_users)
    # 11 input rows but 14 interactions: only the dataset's counts are comparable with a paper
    assert counts[:3] == (3, 6, 14)
    first = "dataset: {:,} users, {:,} items, {:,} interactions, average length {:.2f}".format(*counts)
    assert first == "dataset: 3 users, 6 items, 14 interactions, average length 4.67"
    assert r.output.splitlines()[0] == first
    assert summary_lines(ds)[0] == first
    assert not any("interaction rows" in line for line in r.output.splitlines())
    # the lines about input rows never call them interactions (the dataset's lines do)
    ledger = r.output.splitlines()[1 : r.output.splitlines().index(summary_lines(ds)[-1].splitlines()[0])]
    assert ledger and all("interaction" not in line for line in ledger), ledger
