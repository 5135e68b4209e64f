"""Source kind `petition_csv`: the feedback system's petition export, for SERVICE_INDEX (department-systems.md §4).

A row breaks one of the `petition.*` rules of `row_rules.CSV_ROW_RULES`: `field_count`,
`code_missing`, `agency_missing`, `received_missing`, `date_invalid`, `satisfied_invalid` and
`duplicate_code`; a file refused whole breaks one of `row_rules.CSV_FILE_RULES`. Only the export's six
columns are read: names or phone numbers a system might add are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.csv_reading import FLAG_WORDS, day_or_time_cell, read_csv, text_cell
from baocao.connectors.tabular import FileLimits, RowProblem

PETITION_COLUMNS = ("ma_phan_anh", "ma_donvi", "ngay_nhan", "han_tra_loi", "ngay_tra_loi", "hai_long")
PETITION_MISSING = {
    "ma_phan_anh": "petition.code_missing",
    "ma_donvi": "petition.agency_missing",
    "ngay_nhan": "petition.received_missing",
}


def _petition_row(row: dict[str, str], problems: list[RowProblem]) -> dict[str, Any]:
    record: dict[str, Any] = {
        column: text_cell(row, column, problems, PETITION_MISSING[column]) for column in ("ma_phan_anh", "ma_donvi")
    }
    for column in ("ngay_nhan", "han_tra_loi", "ngay_tra_loi"):
        record[column] = day_or_time_cell(row, column, problems, PETITION_MISSING.get(column), "petition.date_invalid")
    satisfied = (row.get("hai_long") or "").strip()
    if satisfied and satisfied not in FLAG_WORDS:
        problems.append(RowProblem("petition.satisfied_invalid", f"hai_long must be 1, 0 or empty, got {satisfied!r}"))
    record["hai_long"] = FLAG_WORDS.get(satisfied)
    return record


def read_petition_csv(
    source: Path | str | bytes,
    *,
    name: str | None = None,
    delimiter: str | None = None,
    limits: FileLimits | None = None,
) -> ReadResult:
    """The feedback system's petition export. Dates are `dd/mm/yyyy` (a `date`) or `dd/mm/yyyy HH:MM`
    (a naive local `datetime`); `hai_long` is True, False or None (not rated). The delimiter (`;` or
    `,`) is taken from the header line unless given."""
    return read_csv(
        source,
        name=name,
        kind="petition",
        key_column="ma_phan_anh",
        columns=PETITION_COLUMNS,
        required_columns=PETITION_COLUMNS,
        delimiter=delimiter,
        read_row=_petition_row,
        limits=limits,
    )
