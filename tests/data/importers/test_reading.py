import gzip

import pytest

from recx.data.importers.reading import ImportFault, TimeParser, read_lines, read_table


def test_time_parser_numbers_and_dates(tmp_path):
    p = tmp_path / "x.csv"
    assert TimeParser()("17.9", p, 3, "ts") == 17
    assert TimeParser("%Y-%m-%d")("1970-01-02", p, 3, "ts") == 86400
    with pytest.raises(ImportFault, match=r"x\.csv:3: column 'ts': '2020-01-01' is not a number"):
        TimeParser()("2020-01-01", p, 3, "ts")
    with pytest.raises(ImportFault, match="does not match time format"):
        TimeParser("%Y-%m-%d")("01/02/2020", p, 4, "ts")


def test_read_table_faults(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: malformed row: expected 2 fields"):
        list(read_table(p, ",", required=["a"]))
    p.write_text("a,b\n1,2\na,b\n3,4\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: header line repeated"):
        list(read_table(p, ","))
    p.write_text("a,a\n1,2\n")
    with pytest.raises(ImportFault, match=r"t\.csv:1: header names column 'a' twice"):
        list(read_table(p, ","))
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFault, match=r"t\.csv:1: missing column 'c' \(header has a, b\)"):
        list(read_table(p, ",", required=["c"]))
    p.write_text("")
    with pytest.raises(ImportFault, match=r"t\.csv: empty file"):
        list(read_table(p, ","))
    p.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(ImportFault, match=r"t\.csv:3: not valid utf-8"):
        list(read_table(p, ","))


def test_read_table_quoted_fields_report_the_first_line_of_a_row(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,desc\n1,"two\nlines, with comma"\n2,plain\n3\n')
    rows = read_table(p, ",", quoted=True)
    assert next(rows) == (2, {"id": "1", "desc": "two\nlines, with comma"})
    assert next(rows) == (4, {"id": "2", "desc": "plain"})
    with pytest.raises(ImportFault, match=r"q\.csv:5: malformed row"):
        next(rows)


def test_read_lines_gzip_and_bom(tmp_path):
    p = tmp_path / "x.txt.gz"
    with gzip.open(p, "wb") as f:
        f.write("\ufeffhello\r\nw\u00f6rld\n".encode("utf-8"))
    assert list(read_lines(p)) == [(1, "hello"), (2, "w\u00f6rld")]
    assert list(read_lines(_latin1(tmp_path), "latin-1")) == [(1, "caf\u00e9")]


def _latin1(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes(b"caf\xe9\n")
    return p
