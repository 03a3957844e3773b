"""One bounded CSV reader (standard library only) for reference data and distillation tables.

Data files come from users and from anyone who commits to a repository CI checks, so every
bound is checked before the cost it guards: the file's size from ``stat`` before it is
opened, the header's width and each row's length as they are read (one bounded line at a
time), each cell's length before ``float`` sees it, and the rows' count as they are stored
(8 bytes a cell in one array, so memory stays within a few times the file's size). A file
of 10⁶ columns is refused after reading its first ``MAX_ROW_CHARS`` characters, not after
building a table of them.

Cells must be plain numbers. An empty cell, ``nan`` or ``inf`` is kept as NaN/Inf so that the
caller can say which port holds it; ``CsvTable.lines`` gives the file line of each row.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modreg.errors import InputError

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_DATA_BYTES",
    "MAX_ROWS",
    "MAX_ROW_CHARS",
    "CsvTable",
    "read_csv",
]

MAX_DATA_BYTES = 256 << 20
MAX_ROWS = 10_000_000
MAX_COLUMNS = 4096
MAX_ROW_CHARS = 1 << 20
MAX_CELL_CHARS = 64
_MISSING = {"", "nan", "NaN", "NAN", "NA", "N/A", "null"}


@dataclass(frozen=True)
class CsvTable:
    """The columns of a CSV file as float64 arrays, in file order, and each row's file line."""

    source: str
    columns: dict[str, np.ndarray[Any, Any]]
    lines: np.ndarray[Any, Any]  # the file line of each row (blank lines are skipped)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def check_size(path: Path, source: str) -> int:
    """The file's size, refused above ``MAX_DATA_BYTES`` before anything is read.

    Raises:
        InputError: the file is too large, or is not a regular file.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise InputError(f"{source} is not a regular file: give a CSV or Parquet file")
    if size > MAX_DATA_BYTES:
        raise InputError(
            f"{source} is {size:,} bytes, more than the {MAX_DATA_BYTES:,} a data file may hold: "
            "sample it down or split it"
        )
    return size


def _lines(handle: Any, source: str) -> Any:
    """Yield ``(line number, text)``, refusing a line longer than ``MAX_ROW_CHARS``."""
    number = 0
    while True:
        line = handle.readline(MAX_ROW_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_ROW_CHARS:
            raise InputError(
                f"{source}: line {number} is longer than {MAX_ROW_CHARS:,} characters: a data "
                f"file has at most {MAX_COLUMNS} columns of numbers"
            )
        if line.strip():
            yield number, line


def _cells(line: str, number: int, source: str) -> list[str]:
    try:
        row = next(csv.reader([line]), [])
    except csv.Error as exc:
        raise InputError(f"{source}: line {number} is not CSV: {exc}") from exc
    return [cell.strip() for cell in row]


def _header(lines: Any, source: str) -> list[str]:
    first = next(lines, None)
    if first is None:
        raise InputError(f"{source} is empty: write a header row of column names, then rows")
    header = _cells(first[1], first[0], source)
    if len(header) > MAX_COLUMNS:
        raise InputError(
            f"{source} has {len(header):,} columns, more than {MAX_COLUMNS}: keep the columns "
            "the ports need"
        )
    if "" in header or len(set(header)) != len(header):
        raise InputError(f"{source} needs a header row of distinct, non-empty column names")
    if any(len(name) > 256 for name in header):
        raise InputError(f"{source}: a column name is longer than 256 characters")
    return header


def _number(text: str, column: str, line: int, source: str) -> float:
    if text in _MISSING:
        return math.nan
    if len(text) <= MAX_CELL_CHARS:
        try:
            return float(text)
        except ValueError:
            pass
    shown = text if len(text) <= 20 else text[:20] + "..."
    raise InputError(
        f"{source}: line {line}, column {column!r} holds {shown!r}, not a number: "
        "fix the value or drop the column"
    )


def read_csv(path: Path, source: str | None = None) -> CsvTable:
    """Read a CSV file of numbers: a header row of distinct names, then one row per sample.

    Raises:
        InputError: the file is missing, too large, too wide, has a long line, a row of the
            wrong length, a non-numeric cell, or no rows.
    """
    source = source or f"data file {str(path)!r}"
    check_size(path, source)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's BOM
            lines = _lines(handle, source)
            header = _header(lines, source)
            rows, numbers = _body(lines, header, source)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {exc}") from exc
    if not len(rows):
        raise InputError(f"{source} has no rows: it cannot show anything")
    return CsvTable(source, {name: rows[:, j] for j, name in enumerate(header)}, numbers)


def _body(lines: Any, header: list[str], source: str) -> tuple[Any, Any]:
    """The rows as one float64 array (grown by doubling: 8 bytes a cell), and their lines."""
    width = len(header)
    values = np.empty((256, width))
    numbers = np.empty(256, dtype=np.int64)
    count = 0
    for number, line in lines:
        cells = _cells(line, number, source)
        if len(cells) != width:
            raise InputError(f"{source}: line {number} has {len(cells)} cells for {width} columns")
        if count == MAX_ROWS:
            raise InputError(f"{source} has more than {MAX_ROWS:,} rows: sample it down")
        if count == len(values):
            values = np.concatenate([values, np.empty_like(values)])
            numbers = np.concatenate([numbers, np.empty_like(numbers)])
        values[count] = [_number(c, header[j], number, source) for j, c in enumerate(cells)]
        numbers[count] = number
        count += 1
    return values[:count], numbers[:count]
