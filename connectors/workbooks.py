"""Source kinds `ict_workbook` and `egov_workbook`: the yearly self-assessment workbooks (department-systems.md §4).

Workbooks are read with python-calamine once `xlsx_archive` has checked them whole; one sheet per
block of units, headers found below any title block and matched tolerantly (case, spacing,
punctuation, decomposed Unicode). Each reader returns clean values plus rejected rows with reasons
(`ict.*` and `egov.*`, listed in `row_rules.WORKBOOK_ROW_RULES`), and lists the rows that are not data
(headings, totals, footers) as skipped under `<kind>.not_data`: no row disappears silently. Codes stay
text with their leading zeros.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from python_calamine import CalamineError, CalamineWorkbook

from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.tabular import FileLimits, RowProblem, SpreadsheetError, header_key, row_failure
from baocao.connectors.xlsx_archive import open_workbook
from baocao.core.canonical import nfc
from baocao.core.errors import RuleFailure
from baocao.core.vietnamese import parse_number

log = logging.getLogger(__name__)


class Block(StrEnum):
    DEPARTMENT = "DEPARTMENT"
    DISTRICT = "DISTRICT"
    COMMUNE = "COMMUNE"


SHEET_BLOCKS = {"Sở ban ngành": Block.DEPARTMENT, "UBND cấp huyện": Block.DISTRICT, "UBND cấp xã": Block.COMMUNE}

ICT_COLUMNS = {
    "STT": "order",
    "Mã đơn vị": "agency_code",
    "Tên đơn vị": "agency_name",
    "Hạ tầng kỹ thuật": "infrastructure",
    "Nguồn nhân lực": "human_resources",
    "Ứng dụng CNTT": "applications",
    "Chính sách, đầu tư": "policy",
    "Ghi chú": "note",
}
ICT_SCORES = ("infrastructure", "human_resources", "applications", "policy")
EGOV_COLUMNS = {
    "Mã đơn vị": "agency_code",
    "Tên đơn vị": "agency_name",
    "Điểm điều kiện sẵn sàng": "readiness_score",
    "Mức độ": "level",
}
LEVELS = ("I", "II", "III", "IV")
UNRANKED = "UNRANKED"
_UNRANKED_WORDS = frozenset({"chưa xếp hạng", "không xếp hạng", "chưa xếp loại", "không xếp loại"})


def _block_sheets(workbook: CalamineWorkbook, source: str) -> list[tuple[str, Block]]:
    wanted = {header_key(name): block for name, block in SHEET_BLOCKS.items()}
    found = [(name, wanted[header_key(name)]) for name in workbook.sheet_names if header_key(name) in wanted]
    if not found:
        expected = ", ".join(repr(name) for name in SHEET_BLOCKS)
        raise SpreadsheetError(f"workbook {source}: none of the sheets {expected}")
    return found


def _find_header(
    rows: list[list[Any]], columns: dict[str, str], anchors: Sequence[str], where: str, limits: FileLimits
) -> tuple[int, dict[str, int]]:
    """Index of the header's last row and the column positions. The header is the first row (among
    the first `header_search_rows`) holding the anchor titles; when a group title ("Điểm thành phần")
    sits above some column titles, those are taken from the row below, which then ends the header."""
    keys = {header_key(title): name for title, name in columns.items()}
    anchor_keys = {header_key(anchor) for anchor in anchors}
    for index, row in enumerate(rows[: limits.header_search_rows]):
        cells = [header_key(cell) for cell in row]
        if not anchor_keys <= set(cells):
            continue
        positions: dict[str, int] = {}
        for position, cell in enumerate(cells):
            if cell in keys:
                positions.setdefault(keys[cell], position)
        below = [header_key(cell) for cell in rows[index + 1]] if index + 1 < len(rows) else []
        extra = {keys[cell]: position for position, cell in enumerate(below) if cell in keys}
        if len(extra) >= 2 and not set(extra) & set(positions):
            positions.update(extra)
            return index + 1, positions
        return index, positions
    raise SpreadsheetError(
        f"{where}: no header row with {', '.join(repr(anchor) for anchor in anchors)} "
        f"in the first {limits.header_search_rows} rows"
    )


def _cell(row: list[Any], position: int | None) -> Any:
    if position is None or position >= len(row):
        return None
    value = row[position]
    return None if value == "" else value


def _text_cell(value: Any) -> str | None:
    return nfc(value) if isinstance(value, str) else None


def _code(value: Any, label: str, problems: list[RowProblem]) -> str | None:
    """Codes stay text: a number in a code cell has lost its leading zeros and dots, so it is refused."""
    if value is None:
        problems.append(RowProblem("code_missing", f"missing {label}"))
        return None
    if not isinstance(value, str):
        problems.append(
            RowProblem("code_as_number", f"{label} is stored as a number ({value!r}); text keeps its leading zeros")
        )
        return None
    text = nfc(value)
    if text is None:
        problems.append(RowProblem("code_missing", f"missing {label}"))
    return text


def _score(value: Any, label: str, problems: list[RowProblem]) -> Decimal | None:
    if value is None:
        problems.append(RowProblem("score_missing", f"missing {label}"))
        return None
    if isinstance(value, str) and "." in value:
        # In Vietnamese format `302.531` is three hundred thousand, but no score reaches the thousands:
        # the cell was typed with a decimal point, so reading it either way could publish a wrong score.
        problems.append(
            RowProblem(
                "score_invalid",
                f"{label}: {value.strip()!r} is ambiguous ('.' groups thousands); write 302,531 or a number",
            )
        )
        return None
    if isinstance(value, int | float | str):
        try:
            number = parse_number(value)
        except ValueError as problem:
            problems.append(RowProblem("score_invalid", f"{label}: {problem}"))
            return None
        if number < 0:
            problems.append(RowProblem("score_invalid", f"{label} is negative ({number})"))
            return None
        return number
    problems.append(RowProblem("score_invalid", f"{label}: not a number ({type(value).__name__})"))
    return None


def _is_value(value: Any) -> bool:
    """Whether a score or level cell holds something a row of data would (a number or a level)."""
    if value is None or isinstance(value, bool):
        return False
    for read in (parse_number, parse_level):
        try:
            read(value)
        except ValueError:
            continue
        return True
    return False


RowReader = Callable[[list[Any], dict[str, int], list[RowProblem]], dict[str, Any]]


def _read_sheets(
    path: Path | str,
    kind: str,
    columns: dict[str, str],
    required: Sequence[str],
    anchors: Sequence[str],
    read_row: RowReader,
    data_columns: Sequence[str],
    limits: FileLimits | None,
) -> ReadResult:
    limits = limits or FileLimits()
    path = Path(path)
    source = path.name
    workbook = open_workbook(path, limits)
    records: list[dict[str, Any]] = []
    rejects: list[RuleFailure] = []
    skipped: list[RuleFailure] = []
    titles = {name: title for title, name in columns.items()}
    # A unit has one score line in the whole workbook: the same code on two sheets is two blocks at once.
    first_seen: dict[str, tuple[str, int]] = {}
    for sheet_name, block in _block_sheets(workbook, source):
        where = f"{kind} {source} [{sheet_name}]"
        try:
            rows = workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
        except CalamineError as problem:
            raise SpreadsheetError(f"{where}: unreadable sheet ({type(problem).__name__})") from None
        header, positions = _find_header(rows, columns, anchors, where, limits)
        missing = [titles[name] for name in required if name not in positions]
        if missing:
            raise SpreadsheetError(f"{where}: header lacks {', '.join(repr(title) for title in missing)}")
        for index in range(header + 1, len(rows)):
            row = rows[index]
            number = index + 1  # as the spreadsheet numbers its rows
            if all(cell == "" or cell is None for cell in row):
                continue
            if _cell(row, positions["agency_code"]) is None and not any(
                _is_value(_cell(row, positions.get(name))) for name in data_columns
            ):
                # Section headings ("I. Khối sở, ban, ngành"), footers, signatures ("GIÁM ĐỐC").
                skipped.append(RuleFailure(f"{kind}.not_data", f"{where} row {number}", "no unit code and no values"))
                continue
            problems: list[RowProblem] = []
            record = read_row(row, positions, problems)
            code = record.get("agency_code")
            if code and code in first_seen:
                first_sheet, first_row = first_seen[code]
                at = f"row {first_row}" if first_sheet == sheet_name else f"[{first_sheet}] row {first_row}"
                problems.append(RowProblem("duplicate_code", f"duplicate Mã đơn vị {code} (first at {at})"))
            key = f"{where} row {number}" + (f" ({code})" if code else "")
            if problems:
                named = [RowProblem(f"{kind}.{problem.rule}", problem.text) for problem in problems]
                rejects.append(row_failure(key, named, code))
                continue
            if code:
                first_seen[code] = (sheet_name, number)
            records.append({"block": block.value, **record, "sheet": sheet_name, "row": number})
    log.info("%s %s: %d row(s), %d rejected, %d skipped", kind, source, len(records), len(rejects), len(skipped))
    return ReadResult(source, records, rejects, skipped)


def _unit(row: list[Any], positions: dict[str, int], problems: list[RowProblem]) -> dict[str, Any]:
    """The unit's code and name, the first two columns of both workbooks."""
    record: dict[str, Any] = {"agency_code": _code(_cell(row, positions["agency_code"]), "Mã đơn vị", problems)}
    name = _text_cell(_cell(row, positions["agency_name"]))
    if name is None:
        problems.append(RowProblem("name_missing", "missing Tên đơn vị"))
    record["agency_name"] = name
    return record


def _ict_row(row: list[Any], positions: dict[str, int], problems: list[RowProblem]) -> dict[str, Any]:
    record = _unit(row, positions, problems)
    titles = {name: title for title, name in ICT_COLUMNS.items()}
    for column in ICT_SCORES:
        record[column] = _score(_cell(row, positions[column]), titles[column], problems)
    note = _cell(row, positions.get("note"))
    record["note"] = nfc(note) if note is not None else None
    return record


def read_ict_workbook(path: Path | str, limits: FileLimits | None = None) -> ReadResult:
    """The yearly ICT self-assessment: one record per unit with block, agency_code, agency_name, the
    four component scores (Decimal) and note. Sheets of absent blocks (no district sheet after
    2025-07-01) are simply not there; a sheet without the header is an error."""
    return _read_sheets(
        path,
        "ict",
        ICT_COLUMNS,
        ("agency_code", "agency_name", *ICT_SCORES),
        ("STT", "Mã đơn vị"),
        _ict_row,
        ICT_SCORES,
        limits,
    )


def parse_level(value: Any) -> str:
    """`I`…`IV` (also `Mức II`, `2`, lower case) or `Chưa xếp hạng`/`Không xếp hạng` → UNRANKED."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (1, 2, 3, 4):
        return LEVELS[int(value) - 1]
    key = header_key(value)
    if key in _UNRANKED_WORDS:
        return UNRANKED
    key = key.removeprefix("mức độ ").removeprefix("mức ").strip()
    if key.upper() in LEVELS:
        return key.upper()
    if key in ("1", "2", "3", "4"):
        return LEVELS[int(key) - 1]
    raise ValueError(f"unknown level {value!r} (expected I, II, III, IV or 'Chưa xếp hạng')")


def _egov_row(row: list[Any], positions: dict[str, int], problems: list[RowProblem]) -> dict[str, Any]:
    record = _unit(row, positions, problems)
    level_cell = _cell(row, positions["level"])
    level: str | None = None
    if level_cell is None:
        problems.append(RowProblem("level_missing", "missing Mức độ"))
    else:
        try:
            level = parse_level(level_cell)
        except ValueError as problem:
            problems.append(RowProblem("level_unknown", str(problem)))
    # Unranked units have a score too (below the threshold of level I); the central requires one for every unit.
    record["readiness_score"] = _score(_cell(row, positions["readiness_score"]), "Điểm điều kiện sẵn sàng", problems)
    record["level"] = level
    return record


def read_egov_workbook(path: Path | str, limits: FileLimits | None = None) -> ReadResult:
    """The yearly e-government maturity workbook: block, agency_code, agency_name, readiness_score
    (Decimal, required for every unit, unranked ones included) and level (I, II, III, IV or UNRANKED)."""
    return _read_sheets(
        path,
        "egov",
        EGOV_COLUMNS,
        tuple(EGOV_COLUMNS.values()),
        ("Mã đơn vị", "Mức độ"),
        _egov_row,
        ("readiness_score", "level"),
        limits,
    )
