import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from recx.cli import app
from recx.data.importers.columns import SPELLINGS
from recx.data.importers.csv_generic import import_csv
from recx.data.importers.reading import ImportFault

# three users of three items each, rows out of time order so a lost time column shows
ROWS = [("u1", "a", 3), ("u1", "b", 1), ("u1", "c", 2), ("u2", "a", 1), ("u2", "c", 2), ("u2", "b", 3), ("u3", "c", 9), ("u3", "b", 8), ("u3", "a", 7)]
BY_TIME = [["b", "c", "a"], ["a", "c", "b"], ["a", "b", "c"]]


def write_log(path, header: str, day: bool = False, lead: str = "") -> None:
    """``lead`` starts every row (a value for an extra first column)."""
    rows = "".join(f"{lead}{u},{i},{f'2020-09-0{t}' if day else 1_600_000_000 + t}\n" for u, i, t in ROWS)
    path.write_text(header + "\n" + rows)


def import_cli(tmp_path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(app, ["data", "import", "csv", *args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def sequences(ds) -> list[list[str]]:
    return [[ds.item_ids[i] for i in s] for s in ds.sequences()]


def test_usual_column_names_are_found_and_the_choice_is_printed(tmp_path, monkeypatch):
    write_log(tmp_path / "log.csv", "user,item,timestamp")
    r = import_cli(tmp_path, monkeypatch, "log.csv", "--out", "d")
    assert r.exit_code == 0, r.output
    assert "columns: user <- 'user', item <- 'item', time <- 'timestamp'" in r.output.splitlines()
    meta = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert meta["source"]["columns"] == {"user": "user", "item": "item", "time": "timestamp", "detected": ["user", "item", "time"], "time_format": None}
    assert meta["counts"]["interactions"] == 9


def test_movielens_style_header(tmp_path):
    write_log(tmp_path / "ratings.csv", "userId,movieId,timestamp")
    ds = import_csv(tmp_path / "ratings.csv", tmp_path / "o")
    assert sequences(ds) == BY_TIME
    assert (ds.meta["source"]["columns"]["user"], ds.meta["source"]["columns"]["item"]) == ("userId", "movieId")


def test_hm_style_header_with_dates(tmp_path, monkeypatch):
    write_log(tmp_path / "transactions.csv", "customer_id,article_id,t_dat", day=True)
    r = import_cli(tmp_path, monkeypatch, "transactions.csv", "--out", "d", "--time-format", "%Y-%m-%d")
    assert r.exit_code == 0, r.output
    assert "columns: user <- 'customer_id', item <- 'article_id', time <- 't_dat'" in r.output
    ds = import_csv(tmp_path / "transactions.csv", tmp_path / "o", time_format="%Y-%m-%d")
    assert sequences(ds) == BY_TIME


def test_a_date_time_column_without_time_format_says_to_pass_it(tmp_path, monkeypatch):
    write_log(tmp_path / "transactions.csv", "customer_id,article_id,t_dat", day=True)
    line = one_error_line(import_cli(tmp_path, monkeypatch, "transactions.csv", "--out", "d"))
    assert "transactions.csv:2: column 't_dat': '2020-09-03' is not a number" in line and "--time-format" in line
    assert not (tmp_path / "d").exists()


def test_spellings_case_order_and_given_names(tmp_path):
    # case-insensitive; the earlier spelling (user_id) wins over the earlier column (user)
    write_log(tmp_path / "a.csv", "User,USER_ID,ITEM,Time", lead="x,")
    ds = import_csv(tmp_path / "a.csv", tmp_path / "o")
    assert ds.meta["source"]["columns"] == {"user": "USER_ID", "item": "ITEM", "time": "Time", "detected": ["user", "item", "time"], "time_format": None}
    assert ds.user_ids == ["u1", "u2", "u3"] and sequences(ds) == BY_TIME
    # a given name wins over every spelling
    ds = import_csv(tmp_path / "a.csv", tmp_path / "o2", user_col="User", time_col="Time")
    assert ds.user_ids == ["x"] and ds.meta["source"]["columns"]["detected"] == ["item"]


def test_a_given_column_that_is_absent_is_an_error_naming_it(tmp_path, monkeypatch):
    write_log(tmp_path / "log.csv", "user,item,timestamp")
    line = one_error_line(import_cli(tmp_path, monkeypatch, "log.csv", "--out", "d", "--user-col", "customer"))
    assert line == "error: log.csv:1: missing column 'customer' given by --user-col (header has user, item, timestamp)"


def test_a_header_with_no_usual_name_is_one_line_naming_the_option(tmp_path, monkeypatch):
    write_log(tmp_path / "log.csv", "who,what,when")
    line = one_error_line(import_cli(tmp_path, monkeypatch, "log.csv", "--out", "d"))
    tried = ", ".join(SPELLINGS["user"])
    assert line == f"error: log.csv:1: no user column (header has who, what, when; tried {tried}): pass --user-col NAME"
    line = one_error_line(import_cli(tmp_path, monkeypatch, "log.csv", "--out", "d", "--user-col", "who"))
    assert line.startswith("error: log.csv:1: no item column (header has who, what, when; tried item_id, item,")
    assert line.endswith("): pass --item-col NAME")
    # no time column is not an error: each user keeps file order
    r = import_cli(tmp_path, monkeypatch, "log.csv", "--out", "d", "--user-col", "who", "--item-col", "what")
    assert r.exit_code == 0, r.output
    assert "columns: user <- 'who', item <- 'what', time <- none (file order)" in r.output


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
