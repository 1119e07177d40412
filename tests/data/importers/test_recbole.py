import pytest

from recx.data.importers.reading import ImportFault
from recx.data.importers.recbole import import_recbole

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ti1\t5\t3\nu1\ti2\t2\t1\nu1\ti3\t4\t2\nu1\ti4\t4\t4\nu2\ti1\t3\t1\n"
ITEM = "item_id:token\ttitle:token_seq\tbrand:token\tcategories:token_seq\ni1\tRed Pen\tAcme\tOffice Pens\ni2\tNotebook\tPaperCo\t\ni9\tx\ty\tz\n"


def write(root, inter=INTER, item=ITEM):
    root.mkdir(parents=True, exist_ok=True)
    (root / "toy.inter").write_text(inter)
    if item is not None:
        (root / "toy.item").write_text(item)
    return root


def test_atomic_files_default_text_is_token_seq_columns(tmp_path):
    ds = import_recbole(write(tmp_path / "r"), tmp_path / "o")
    assert ds.user_ids == ["u1"]
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["i2", "i3", "i1", "i4"]]
    assert ds.texts[ds.index_of("i1")] == "Red Pen. Office Pens."
    assert ds.texts[ds.index_of("i2")] == "Notebook."
    assert ds.texts[ds.index_of("i4")] is None
    assert ds.meta["import"]["rows"] == {"kept": 4, "filtered: min sequence length": 1}


def test_template_min_rating_and_bare_column_names(tmp_path):
    ds = import_recbole(write(tmp_path / "r"), tmp_path / "o", min_rating=4, text_fields="title,brand", text_template="{title} ({brand})")
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["i3", "i1", "i4"]]
    assert ds.texts[ds.index_of("i1")] == "Red Pen (Acme)"
    assert ds.meta["import"]["rows"] == {"kept": 3, "skipped: rating below 4": 2}


def test_no_timestamp_keeps_file_order_and_missing_user_column(tmp_path):
    ds = import_recbole(write(tmp_path / "r", inter="user_id:token\titem_id:token\nu\tb\nu\ta\nu\tc\n", item=None), tmp_path / "o")
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["b", "a", "c"]]
    assert ds.timestamps is None and ds.meta["text"] is None
    with pytest.raises(ImportFault, match=r"toy\.inter:1: no user column \(header has who:token, item_id:token; tried user_id, .*\): pass --user-col NAME"):
        import_recbole(write(tmp_path / "r2", inter="who:token\titem_id:token\nu\tb\n", item=None), tmp_path / "o2")
    with pytest.raises(ImportFault, match=r"toy\.inter:1: missing column 'user_id' given by --user-col"):
        import_recbole(write(tmp_path / "r3", inter="uid:token\titem_id:token\nu\tb\n", item=None), tmp_path / "o3", user_col="user_id")


def test_usual_column_names_with_types_and_dates(tmp_path):
    inter = "uid:token\tparent_asin:token\tdate:token\nu\tb\t2020-01-02\nu\ta\t2020-01-01\nu\tc\t2020-01-03\n"
    item = "parent_asin:token\ttitle:token_seq\na\tMug\n"
    with pytest.raises(ImportFault, match=r"toy\.inter:2: column 'date:token': '2020-01-02' is not a number \(pass --time-format"):
        import_recbole(write(tmp_path / "r", inter=inter, item=item), tmp_path / "o")
    ds = import_recbole(tmp_path / "r", tmp_path / "o", time_format="%Y-%m-%d")
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["a", "b", "c"]]
    assert ds.texts[ds.index_of("a")] == "Mug."
    cols = ds.meta["source"]["columns"]
    assert (cols["user"], cols["item"], cols["time"], cols["detected"]) == ("uid:token", "parent_asin:token", "date:token", ["user", "item", "time"])
