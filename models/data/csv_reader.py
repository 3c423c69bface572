"""Reading uploaded CSV files: a header row of column names, then numeric cells only.

Each column becomes one 1-D ``float32`` array named by its header. A first row that is entirely
numeric is data, not a header, and the columns are then named ``"0"``, ``"1"``, ...
"""

from __future__ import annotations

import array
import csv
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np

from models.errors import InvalidUpload
from models.settings import Settings

# A line is refused before csv splits it, so one enormous line cannot allocate millions of cells
# ahead of the column check; 128 characters a cell leaves room for long names and numbers.
CHARS_PER_CELL = 128
_HOW = (
    "Upload a comma-separated file whose first row names the columns and whose cells are numbers."
)


def read_csv_columns(path: Path, settings: Settings) -> dict[str, np.ndarray]:
    """Parse an uploaded CSV file into one ``float32`` column per header name.

    Args:
        path: The uploaded file on disk.
        settings: Limits on rows (``max_csv_rows``) and columns (``max_csv_columns``).

    Returns:
        The columns in file order, each a 1-D ``float32`` array.

    Raises:
        InvalidUpload: The file is not UTF-8 CSV text, has an empty, duplicate or missing column
            name, an empty or non-numeric cell, a ragged row, no data rows, or more rows or
            columns than the limits allow.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as text:
            return _parse(text, settings)
    except UnicodeDecodeError as error:
        raise InvalidUpload(
            f"The uploaded CSV file is not UTF-8 text ({error.reason}: byte "
            f"{error.object[error.start : error.start + 1]!r}). Save it as UTF-8 CSV. {_HOW}"
        ) from error
    except csv.Error as error:
        raise InvalidUpload(
            f"The uploaded CSV file could not be parsed: {error}. {_HOW}"
        ) from error


def _parse(text: TextIO, settings: Settings) -> dict[str, np.ndarray]:
    max_columns, max_rows = settings.max_csv_columns, settings.max_csv_rows
    rows = csv.reader(_bounded_lines(text, max_columns * CHARS_PER_CELL))
    first = next((row for row in rows if row), None)
    if first is None:
        raise InvalidUpload(f"The uploaded CSV file has no rows. {_HOW}")
    if len(first) > max_columns:
        raise InvalidUpload(
            f"The uploaded CSV file has too many columns: {len(first)} columns, but the limit is "
            f"{max_columns}. Split the data into several files or upload it as .npz or HDF5."
        )
    headerless = all(_is_number(cell) for cell in first)
    names = [str(i) for i in range(len(first))] if headerless else _column_names(first)
    columns = [array.array("f") for _ in names]
    row_count = 0
    max_cells = settings.max_csv_cells
    for row in itertools.chain([first] if headerless else [], rows):
        if not row:
            continue
        row_count += 1
        if row_count * len(names) > max_cells:
            raise InvalidUpload(
                f"The uploaded CSV file has too many cells: more than {max_cells} "
                f"({row_count} rows of {len(names)} columns so far), the limit "
                "(REMOTEFIT_MAX_CSV_CELLS). Split the data or upload it as .npz or HDF5."
            )
        if row_count > max_rows:
            raise InvalidUpload(
                f"The uploaded CSV file has too many rows: more than {max_rows} data rows, but "
                f"the limit is {max_rows}. Split the data or upload it as .npz or HDF5."
            )
        if len(row) != len(names):
            raise InvalidUpload(
                f"Row {row_count} (line {rows.line_num}) of the uploaded CSV file has "
                f"{len(row)} cells, but the first row has {len(names)}. Give every row "
                f"one value per column. Received: {_preview(','.join(row))}"
            )
        try:
            for column, value in zip(columns, map(float, row), strict=True):
                column.append(value)
        except ValueError:
            _raise_bad_cell(row, names, row_count, rows.line_num)
    if row_count == 0:
        raise InvalidUpload(f"The uploaded CSV file has a header but no data rows. {_HOW}")
    return {
        name: np.frombuffer(column, dtype=np.float32)
        for name, column in zip(names, columns, strict=True)
    }


def _bounded_lines(text: TextIO, limit: int) -> Iterator[str]:
    line_number = 0
    while line := text.readline(limit + 1):
        line_number += 1
        if len(line) > limit:
            raise InvalidUpload(
                f"Line {line_number} of the uploaded CSV file is longer than {limit} characters "
                f"({CHARS_PER_CELL} per allowed column). Check that the file is CSV with one "
                f"row per line. {_HOW}"
            )
        yield line


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_names(header: list[str]) -> list[str]:
    names = [cell.strip() for cell in header]
    for index, name in enumerate(names):
        if not name:
            raise InvalidUpload(
                f"Column {index + 1} of the uploaded CSV file has an empty name in the header "
                f"row. Give every column a non-empty name. Received header: "
                f"{_preview(','.join(header))}"
            )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidUpload(
            f"The uploaded CSV file has duplicate column names: {duplicates}. Give every column "
            f"a unique name in the header row."
        )
    return names


def _raise_bad_cell(row: list[str], names: list[str], row_count: int, line: int) -> NoReturn:
    for name, cell in zip(names, row, strict=True):
        where = f"column {name!r}, row {row_count} (line {line})"
        if not cell.strip():
            raise InvalidUpload(
                f"The uploaded CSV file has an empty cell in {where}. Every cell must hold a "
                f"number; fill in or drop the missing values before uploading."
            )
        if not _is_number(cell):
            raise InvalidUpload(
                f"The uploaded CSV file has a non-numeric cell in {where}: only numeric columns "
                f"are accepted. Encode text and categories as numbers before uploading. "
                f"Received: {_preview(cell)}"
            )
    raise InvalidUpload(
        f"Row {row_count} (line {line}) of the uploaded CSV file is invalid. {_HOW}"
    )


def _preview(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")
