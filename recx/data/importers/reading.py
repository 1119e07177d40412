"""Reading importer inputs: line-numbered streaming of plain or gzipped files, delimited tables
with header checks, value parsers, and the fault every bad input raises (``file:line: what``)."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections import Counter
from pathlib import Path
from typing import Generator, Iterator, Sequence

from recx.data.dataset import DatasetError


class ImportFault(DatasetError):
    """Input the importer cannot read: the message is ``file:line: fault``."""


def fault(path: str | os.PathLike, lineno: int | None, msg: str) -> ImportFault:
    where = f"{path}:{lineno}" if lineno is not None else str(path)
    return ImportFault(f"{where}: {msg}")


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ImportFault(f"{path}: {what} not found")
    if path.stat().st_size == 0:
        raise ImportFault(f"{path}: empty file")
    return path


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_lines(path: str | os.PathLike, encoding: str = "utf-8") -> Generator[tuple[int, str], None, None]:
    """Stream ``(lineno, line)`` (1-based, newline stripped); bad bytes are a fault naming the line.

    ``.gz`` files are decompressed on the fly.  A UTF-8 byte-order mark on line 1 is dropped.
    """
    p = Path(path)
    require_file(p, "file")
    with _open_binary(p) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise fault(p, lineno, f"not valid {encoding} (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield lineno, line.rstrip("\r\n")


def read_table(
    path: str | os.PathLike,
    sep: str,
    required: Sequence[str] = (),
    header: bool = True,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream the rows of a delimited file as ``(lineno, {column: value})``.

    Args:
        sep: field separator (one character).
        required: columns that must be present (a missing one is a fault naming the header).
        header: the first line names the columns; otherwise ``columns`` does.
        quoted: honour CSV quoting (fields may hold separators and newlines); the line number
            reported is the row's first line.

    Faults: empty file, missing column, a row with the wrong number of fields, the header
    repeated inside the file, bad encoding.
    """
    p = Path(path)
    rows = _records(read_lines(p, encoding), sep, p, quoted)
    names: list[str]
    if header:
        names = _header_names(rows, p)
    else:
        if columns is None:
            raise ValueError("read_table: columns are needed when the file has no header")
        names = list(columns)
    missing = [c for c in required if c not in names]
    if missing:
        raise fault(p, 1 if header else None, f"missing column {missing[0]!r} (header has {', '.join(names)})")
    width = len(names)
    seen_any = False
    for lineno, fields in rows:
        if not fields or (len(fields) == 1 and fields[0] == ""):
            continue  # blank line
        seen_any = True
        if header and fields[0].strip() == names[0] and [f.strip() for f in fields] == names:
            raise fault(p, lineno, "header line repeated inside the file (two files concatenated?)")
        if len(fields) != width:
            raise fault(p, lineno, f"malformed row: expected {width} fields ({sep!r}-separated), got {len(fields)}")
        yield lineno, dict(zip(names, fields))
    if not seen_any and not header:
        raise fault(p, None, "empty file")


def read_header(path: str | os.PathLike, sep: str, encoding: str = "utf-8", quoted: bool = False) -> list[str]:
    """The column names on the first line, with the checks :func:`read_table` makes of them."""
    p = Path(path)
    lines = read_lines(p, encoding)
    try:
        return _header_names(_records(lines, sep, p, quoted), p)
    finally:
        lines.close()


def _records(lines: Iterator[tuple[int, str]], sep: str, path: Path, quoted: bool) -> Iterator[tuple[int, list[str]]]:
    if quoted:
        return _csv_rows(lines, sep, path)
    return ((n, line.split(sep)) for n, line in lines)


def _header_names(rows: Iterator[tuple[int, list[str]]], path: Path) -> list[str]:
    try:
        _, names = next(rows)
    except StopIteration:
        raise fault(path, None, "empty file") from None
    names = [c.strip() for c in names]
    dup = [c for c, k in Counter(names).items() if k > 1]
    if dup:
        raise fault(path, 1, f"header names column {dup[0]!r} twice")
    return names


def _csv_rows(lines: Iterator[tuple[int, str]], sep: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """CSV records from numbered lines; a quoted field may span lines."""
    state = {"n": 0}

    def text() -> Iterator[str]:
        for n, line in lines:
            state["n"] = n
            yield line + "\n"

    reader = csv.reader(text(), delimiter=sep)
    start = 1
    try:
        for rec in reader:
            yield start, rec
            start = state["n"] + 1
    except csv.Error as e:
        raise fault(path, state["n"], f"malformed CSV ({e})") from None


def parse_int(value: str, path: Path, lineno: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise fault(path, lineno, f"column {column!r}: {value!r} is not an integer") from None


def parse_float(value: str, path: Path, lineno: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise fault(path, lineno, f"column {column!r}: {value!r} is not a number") from None


class TimeParser:
    """Column value -> integer seconds.  Numeric by default; ``fmt`` is a strptime format (UTC).

    Parsed date strings are cached: date columns repeat a few thousand distinct values.
    """

    def __init__(self, fmt: str | None = None) -> None:
        self.fmt = fmt
        self._cache: dict[str, int] = {}

    def __call__(self, value: str, path: Path, lineno: int, column: str) -> int:
        if self.fmt is None:
            try:
                return int(value)
            except ValueError:
                try:
                    return int(float(value))
                except ValueError:
                    raise fault(path, lineno, f"column {column!r}: {value!r} is not a number (pass --time-format for dates)") from None
        got = self._cache.get(value)
        if got is not None:
            return got
        from datetime import datetime, timezone

        try:
            t = int(datetime.strptime(value.strip(), self.fmt).replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            raise fault(path, lineno, f"column {column!r}: {value!r} does not match time format {self.fmt!r}") from None
        if len(self._cache) < 1_000_000:
            self._cache[value] = t
        return t
