import pytest

from recx.data.importers.reading import ImportFault
from recx.data.importers.rechorus import import_rechorus

H = "user_id\titem_id\ttime\n"
HN = "user_id\titem_id\ttime\tneg_items\n"


def write(root, train, dev, test, text=True):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(H + train)
    (root / "dev.csv").write_text(HN + dev)
    (root / "test.csv").write_text(HN + test)
    (root / "Toy.item2index").write_text("A1\t1\nA2\t2\nA3\t3\nA4\t4\n")
    if text:
        (root / "Toy.text").write_text("id\ttext\nA1\tfirst  item\nA2\tsecond\nA3\t\nZZ\tstray\n")
    return root


def test_sequences_are_train_by_time_then_dev_then_test(tmp_path):
    src = write(tmp_path / "s", "1\t3\t20\n1\t1\t10\n1\t2\t20\n2\t4\t5\n", "1\t4\t30\t[2, 3]\n2\t1\t6\t[]\n", "1\t1\t40\t[2]\n2\t2\t6\t[]\n")
    ds = import_rechorus(src, tmp_path / "o")
    assert ds.user_ids == ["1", "2"]
    assert ds.item_ids[1:] == ["A1", "A2", "A3", "A4"]
    assert [s.tolist() for s in ds.sequences()] == [[1, 3, 2, 4, 1], [4, 1, 2]]  # tie at t=20: file order
    assert ds.texts[1:] == ["first item", "second", None, None]
    assert ds.meta["import"]["rows"] == {"kept": 8}
    assert ds.meta["import"]["warnings"] == {"text rows for items not in item2index": 1, "items without text": 2}


def test_dev_older_than_train_is_a_fault(tmp_path):
    src = write(tmp_path / "s", "1\t1\t10\n1\t2\t20\n", "1\t3\t15\t[]\n", "1\t4\t40\t[]\n")
    with pytest.raises(ImportFault, match=r"dev\.csv:2: user 1: dev interaction is older"):
        import_rechorus(src, tmp_path / "o")


def test_missing_test_row_and_unknown_item(tmp_path):
    src = write(tmp_path / "s", "1\t1\t10\n", "1\t3\t15\t[]\n", "2\t4\t40\t[]\n")
    with pytest.raises(ImportFault, match=r"test\.csv: user 1 has 0 rows, expected exactly 1"):
        import_rechorus(src, tmp_path / "o")
    src = write(tmp_path / "s", "1\t9\t10\n", "1\t3\t15\t[]\n", "1\t4\t40\t[]\n")
    with pytest.raises(ImportFault, match=r"Toy\.item2index: item_id 9 used in the interactions is not listed"):
        import_rechorus(src, tmp_path / "o")


def test_short_users_are_filtered_and_counted(tmp_path):
    src = write(tmp_path / "s", "1\t1\t10\n", "1\t3\t15\t[]\n2\t1\t1\t[]\n", "1\t4\t40\t[]\n2\t2\t2\t[]\n")
    ds = import_rechorus(src, tmp_path / "o")
    assert ds.user_ids == ["1"]
    assert ds.meta["import"]["rows"] == {"kept": 3, "filtered: min sequence length": 2}


@pytest.mark.realdata
def test_amazon_office_counts_and_split(shared_data, tmp_path):
    src = shared_data("amazon-office", "train.csv")
    ds = import_rechorus(src, tmp_path / "o")
    assert (ds.num_users, ds.num_items, ds.items.size) == (4905, 2420, 53258)
    for split, name in (("valid", "dev.csv"), ("test", "test.csv")):
        _, targets = ds.split(split)
        given = {}
        for line in (src / name).read_text().splitlines()[1:]:
            u, i, _t, _neg = line.split("\t")
            given[u] = int(i)
        got = {u: ds.item_meta[t]["rechorus_id"] for u, t in zip(ds.user_ids, targets)}
        assert got == given
