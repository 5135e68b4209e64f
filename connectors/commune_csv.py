"""Source kind `commune_csv`: a commune's dossier export, its whole `hoso` table as a `;`-separated file
(department-systems.md §2, §4).

A row breaks one of the `commune.*` rules of `row_rules.CSV_ROW_RULES` (listed there with their
meaning): `field_count`, `code_missing`, `agency_missing`, `channel_missing`, `channel_unknown`,
`status_missing`, `status_unknown`, `received_missing`, `date_invalid`, `flag_invalid` and
`duplicate_code`; a file refused whole breaks one of `row_rules.CSV_FILE_RULES`. The applicant's
name, ID number and phone are never copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.csv_reading import flag_cell, read_csv, text_cell, time_cell
from baocao.connectors.tabular import FileLimits, RowProblem

HOSO_TEXT = ("ma_hoso", "ma_donvi", "ma_thutuc", "ma_linhvuc", "ten_linhvuc")
HOSO_TIMES = ("ngay_nhan", "ngay_hen_tra", "ngay_tra", "ngay_capnhat")
HOSO_FLAGS = ("co_phi", "tt_truc_tuyen", "da_so_hoa")
HOSO_CODES = {"hinhthuc_nop": frozenset({1, 2, 3}), "trang_thai": frozenset({1, 2, 3, 4, 5, 6, 9})}
HOSO_COLUMNS = (
    *HOSO_TEXT,
    "hinhthuc_nop",
    "ngay_nhan",
    "ngay_hen_tra",
    "ngay_tra",
    "trang_thai",
    *HOSO_FLAGS,
    "ngay_capnhat",
)
# Required column → the rule an empty cell breaks; a code column → the rule a value outside its codes breaks.
HOSO_MISSING = {
    "ma_hoso": "commune.code_missing",
    "ma_donvi": "commune.agency_missing",
    "hinhthuc_nop": "commune.channel_missing",
    "ngay_nhan": "commune.received_missing",
    "trang_thai": "commune.status_missing",
}
HOSO_UNKNOWN = {"hinhthuc_nop": "commune.channel_unknown", "trang_thai": "commune.status_unknown"}


def _hoso_row(row: dict[str, str], problems: list[RowProblem]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column in HOSO_TEXT:
        record[column] = text_cell(row, column, problems, HOSO_MISSING.get(column))
    for column, allowed in HOSO_CODES.items():
        text = (row.get(column) or "").strip()
        record[column] = None
        if not text:
            problems.append(RowProblem(HOSO_MISSING[column], f"missing {column}"))
        elif not text.isdigit() or int(text) not in allowed:
            problems.append(RowProblem(HOSO_UNKNOWN[column], f"{column} {text!r} is not one of {sorted(allowed)}"))
        else:
            record[column] = int(text)
    for column in HOSO_TIMES:
        record[column] = time_cell(row, column, problems, HOSO_MISSING.get(column), "commune.date_invalid")
    for column in HOSO_FLAGS:
        record[column] = flag_cell(row, column, problems, "commune.flag_invalid")
    return {column: record[column] for column in HOSO_COLUMNS}


def read_commune_csv(
    source: Path | str | bytes, *, name: str | None = None, limits: FileLimits | None = None
) -> ReadResult:
    """A commune's dossier export: records with the `hoso` column names (§2) and values as the SQL
    table holds them (text codes, int channel and status, naive local datetimes, bool-or-None flags),
    without the applicant's name, ID number and phone. `;`-separated."""
    return read_csv(
        source,
        name=name,
        kind="commune",
        key_column="ma_hoso",
        columns=HOSO_COLUMNS,
        required_columns=HOSO_COLUMNS,
        delimiter=";",
        read_row=_hoso_row,
        limits=limits,
    )
