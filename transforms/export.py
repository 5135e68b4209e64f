"""Reports and quarantine lists as CSV and xlsx files for the province's IT department.

Every cell that holds text is written as text and never as a formula (department-systems.md §4:
cells that begin with `=`, `+`, `-`, `@` are data wherever they are written back). Text in this
project's tables comes from outside (field names typed in a department's system, record keys and
reasons quoted from a file), so a field name `=HYPERLINK(...)` must reach the spreadsheet as those
characters. In CSV, text beginning with a character a spreadsheet reads as the start of a formula
gets a leading `'` (OWASP's CSV-injection advice) and every text field is quoted; in xlsx, text
cells are typed as strings (never `<f>`) and carry Excel's quote prefix, so that editing the cell
does not turn it into a formula either. Numbers stay numbers. CSV is UTF-8 with a byte-order mark
(Excel reads it as UTF-8 then), comma-separated, decimals with `.`; xlsx reads the same in any locale.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from baocao.core.errors import ConfigurationError

# What spreadsheets take as the start of a formula (OWASP: = + - @ tab carriage return), and the
# full-width forms that some locales' input methods turn into them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMATS = ("csv", "xlsx")
QUARANTINE_COLUMNS = ("batch_id", "source", "stage", "record_key", "rule", "detail", "at")

Cell = str | int | float | Decimal | bool | date | None


@dataclass(frozen=True)
class Table:
    """One sheet (or one block of a CSV file): its name, column titles and rows of plain values."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def csv_text(text: str) -> str:
    """Text as a CSV field that no spreadsheet evaluates."""
    return "'" + text if is_formula_like(text) else text


def plain_value(value: Any) -> Cell:
    """A frame's value as a cell: missing values empty, numpy scalars as Python numbers, enums by value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool | str | date):
        return value
    if hasattr(value, "item") and not isinstance(value, int | float):  # numpy scalars
        return plain_value(value.item())
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    return str(value)


def frame_table(name: str, frame: pd.DataFrame) -> Table:
    columns = tuple(str(column) for column in frame.columns)
    rows = [tuple(plain_value(value) for value in row) for row in frame.itertuples(index=False, name=None)]
    return Table(name, columns, rows)


def report_tables(tables: Mapping[str, pd.DataFrame]) -> list[Table]:
    """A stored report's tables (`baocao.core.report.Report.tables`): one, named `report`, for most
    reports; the e-government maturity report's `agencies` and `summary`."""
    return [frame_table(name, frame) for name, frame in tables.items()]


def quarantine_table(records: Iterable[Mapping[str, Any]]) -> Table:
    """A batch's quarantine (`warehouse.quarantined_records`): record keys, rules and reasons only;
    the readers never put personal data there."""
    rows = [tuple(plain_value(record.get(column)) for column in QUARANTINE_COLUMNS) for record in records]
    return Table("quarantine", QUARANTINE_COLUMNS, rows)


class _DecimalNumber(float):
    """A Decimal for the csv module: a float, so that it is written unquoted like every number, that
    writes itself as the Decimal's exact digits (the csv module writes a float with its repr)."""

    digits: str

    def __new__(cls, value: Decimal) -> _DecimalNumber:
        number = super().__new__(cls, value)
        number.digits = format(value, "f")
        return number

    def __repr__(self) -> str:
        return self.digits

    __str__ = __repr__


def _csv_field(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return _DecimalNumber(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return csv_text(value)


def _replace_atomically(path: Path, write: Any) -> None:
    """Write to a temporary name and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_csv(tables: Sequence[Table], path: Path | str) -> int:
    """The tables one after the other (a blank line and the table's name between them); returns
    the number of data rows written."""
    path = Path(path)

    def write(target: Path) -> None:
        with target.open("w", encoding="utf-8-sig", newline="") as handle:
            # Text is quoted, numbers are not: numbers stay numbers when a spreadsheet opens the file.
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
            for number, table in enumerate(tables):
                if len(tables) > 1:
                    if number:
                        writer.writerow([])
                    writer.writerow([csv_text(f"[{table.name}]")])
                writer.writerow([csv_text(column) for column in table.columns])
                writer.writerows([_csv_field(value) for value in row] for row in table.rows)

    _replace_atomically(path, write)
    return sum(len(table.rows) for table in tables)


def _xlsx_text(text: str) -> str:
    # Control characters have no place in a worksheet's XML: written as visible escapes, not dropped.
    return ILLEGAL_CHARACTERS_RE.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


def write_xlsx(tables: Sequence[Table], path: Path | str) -> int:
    """One sheet per table; returns the number of data rows written."""
    path = Path(path)
    workbook = Workbook()
    workbook.remove(workbook.active)
    for table in tables:
        sheet = workbook.create_sheet(_xlsx_text(table.name)[:31])
        for row_number, values in enumerate([table.columns, *table.rows], start=1):
            for column_number, value in enumerate(values, start=1):
                cell = sheet.cell(row=row_number, column=column_number)
                if value == "":
                    continue  # an empty cell
                if isinstance(value, str):
                    cell.value = _xlsx_text(value)
                    # openpyxl would make "=..." a formula; a string cell is only ever text. The quote
                    # prefix keeps Excel from making it one when somebody edits the cell.
                    cell.data_type = "s"
                    if is_formula_like(value):
                        cell.quotePrefix = True
                elif isinstance(value, datetime) and value.tzinfo is not None:
                    cell.value = value.isoformat()  # Excel has no time zones: the exact instant as text
                    cell.data_type = "s"
                else:
                    cell.value = value
                    if isinstance(value, Decimal):
                        exponent = value.as_tuple().exponent
                        if isinstance(exponent, int) and exponent < 0:
                            cell.number_format = "0." + "0" * -exponent  # 98.90 shows as 98.90
        for column_number, title in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(column_number)].width = max(10, min(60, len(title) + 2))
        sheet.freeze_panes = "A2"
    _replace_atomically(path, workbook.save)
    return sum(len(table.rows) for table in tables)


def write_tables(tables: Sequence[Table], path: Path | str, file_format: str) -> int:
    if file_format == "csv":
        return write_csv(tables, path)
    if file_format == "xlsx":
        return write_xlsx(tables, path)
    raise ConfigurationError(f"export: unknown format {file_format!r} (known: {', '.join(FORMATS)})")
