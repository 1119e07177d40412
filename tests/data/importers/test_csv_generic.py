import pytest
from PIL import Image

from recx.data.importers.reading import ImportFault
from recx.data.importers.csv_generic import import_csv


def test_columns_dates_items_file_and_images(tmp_path):
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "pics" / "b.png")
    inter = tmp_path / "log.tsv"
    inter.write_text("who\twhat\twhen\nx\ta\t2021-01-03\nx\tb\t2021-01-01\nx\tc\t2021-01-02\nx\tc\t2021-01-02\n")
    items = tmp_path / "items.tsv"
    items.write_text("what\tname\tcolour\tpic\na\tMug\tred\t\nb\tCup\t\tb.png\nc\tBowl\tblue\tmissing.png\n")
    ds = import_csv(
        inter, tmp_path / "o", user_col="who", item_col="what", time_col="when", time_format="%Y-%m-%d", sep="\\t",
        items=items, text_fields="name,colour", image_col="pic", images=tmp_path / "pics", dedup="consecutive",
    )
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["b", "c", "a"]]
    assert [ds.texts[ds.index_of(k)] for k in "abc"] == ["Mug. red.", "Cup.", "Bowl. blue."]
    assert [p is not None for p in (ds.image_paths[ds.index_of(k)] for k in "abc")] == [False, True, False]
    assert ds.meta["import"]["warnings"]["image paths that do not exist"] == 1
    assert ds.meta["import"]["rows"] == {"kept": 3, "filtered: consecutive duplicate": 1}


def test_without_time_column_file_order_is_kept(tmp_path):
    inter = tmp_path / "log.csv"
    inter.write_text('user_id,item_id\n1,"z, with comma"\n1,y\n1,x\n')
    ds = import_csv(inter, tmp_path / "o")
    assert ds.item_ids[1:] == ["z, with comma", "y", "x"]
    assert ds.timestamps is None
    assert ds.meta["source"]["order"] == "file order (no time column)"


def test_faults_name_file_and_line(tmp_path):
    inter = tmp_path / "log.csv"
    inter.write_text("user_id,item_id,timestamp\n1,a,5\n1,,6\n")
    with pytest.raises(ImportFault, match=r"log\.csv:3: empty 'item_id'"):
        import_csv(inter, tmp_path / "o")
    with pytest.raises(ImportFault, match=r"log\.csv:1: missing column 'when'"):
        import_csv(inter, tmp_path / "o", time_col="when")
    inter.write_text("user_id,item_id,timestamp\n1,a,5\n1,b,5\n")
    with pytest.raises(ImportFault, match="no user is left after filtering"):
        import_csv(inter, tmp_path / "o")
    assert not (tmp_path / "o").exists()
