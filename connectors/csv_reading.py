"""What the CSV readers share: the file's bytes within the limits, its text decoded with confidence, the
lines bounded in number and length, one record or one reject per line, and the cell readers.

Files are decoded by `core.vietnamese.decode_text` (UTF-8 with or without BOM, Windows-1258, TCVN3);
a file that cannot be decoded with confidence is rejected whole with the reason, never read as
mojibake. Personal columns (the applicant's name, ID number, phone) are dropped before a row is read.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.tabular import FileLimits, RowProblem, SpreadsheetError, row_failure
from baocao.core.canonical import PERSONAL_FIELDS, nfc
from baocao.core.errors import RuleFailure
from baocao.core.vietnamese import UndecodableTextError, decode_text, parse_date, parse_datetime

log = logging.getLogger(__name__)

FLAG_WORDS = {"0": False, "1": True}


def _csv_bytes(source: Path | str | bytes, name: str | None, kind: str, limits: FileLimits) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        label = name or "(bytes)"
        if len(source) > limits.max_bytes:
            raise SpreadsheetError(f"{kind} {label}: {len(source)} bytes, more than the limit of {limits.max_bytes}")
        return source, label
    path = Path(source)
    label = name or path.name
    if path.is_symlink() or not path.is_file():
        # A link in a drop folder could point anywhere the pipeline can read: only regular files are read.
        raise SpreadsheetError(f"{kind} {label}: not found (or not a regular file)")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise SpreadsheetError(f"{kind} {label}: {size} bytes, more than the limit of {limits.max_bytes}")
    with path.open("rb") as handle:
        data = handle.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise SpreadsheetError(f"{kind} {label}: more than the limit of {limits.max_bytes} bytes")
    return data, label


# One physical line with its end (\r\n, \r or \n), as the csv module reads them; no copy of the text is made.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class _CsvBoundExceeded(csv.Error):
    """A CSV file past one of the reader's bounds (lines, line length)."""


def _csv_lines(text: str, limits: FileLimits) -> Iterator[str]:
    """The lines of the text for the csv module, bounded in number and length."""
    for number, line in enumerate(_LINE.finditer(text), 1):
        if number > limits.max_csv_lines:
            raise _CsvBoundExceeded(f"more than {limits.max_csv_lines} lines, the limit")
        if len(line[0]) > limits.max_line_chars:
            raise _CsvBoundExceeded(f"line {number} is longer than the limit of {limits.max_line_chars} characters")
        yield line[0]


def _whole_file_reject(kind: str, label: str, rule: str, reason: str, encoding: str | None = None) -> ReadResult:
    log.warning("%s %s rejected whole: %s", kind, label, reason)
    return ReadResult(
        label, [], [RuleFailure(rule, f"{kind} {label} (whole file)", reason)], [], encoding, refused_whole=True
    )


def read_csv(
    source: Path | str | bytes,
    *,
    name: str | None,
    kind: str,
    key_column: str,
    columns: Sequence[str],
    required_columns: Sequence[str],
    delimiter: str | None,
    read_row: Callable[[dict[str, str], list[RowProblem]], dict[str, Any]],
    limits: FileLimits | None,
) -> ReadResult:
    limits = limits or FileLimits()
    data, label = _csv_bytes(source, name, kind, limits)
    try:
        decoded = decode_text(data)
    except UndecodableTextError as problem:
        return _whole_file_reject(kind, label, f"{kind}.encoding", f"cannot be decoded: the file {problem.reason}")
    if delimiter is None:
        first = next((line[0] for line in _LINE.finditer(decoded.text) if line[0].strip()), "")
        delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(_csv_lines(decoded.text, limits), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[dict[str, Any]] = []
    rejects: list[RuleFailure] = []
    first_seen: dict[str, int] = {}

    def too_many_rejects() -> ReadResult:
        earliest = rejects[0]
        return _whole_file_reject(
            kind,
            label,
            f"{kind}.rejects",
            f"more than {limits.max_rejected_rows} rows rejected (the first: {earliest.record}: "
            f"{earliest.detail}): not an export of the expected form",
            decoded.encoding,
        )

    try:
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip().lstrip("\ufeff").casefold() for cell in cells]
                missing = [column for column in required_columns if column not in header]
                if missing:
                    return _whole_file_reject(
                        kind, label, f"{kind}.header", f"header lacks {', '.join(missing)}", decoded.encoding
                    )
                continue
            if len(rejects) > limits.max_rejected_rows:
                return too_many_rejects()
            if len(cells) != len(header):
                rejects.append(
                    RuleFailure(
                        f"{kind}.field_count",
                        f"{kind} {label} row {number}",
                        f"{len(cells)} fields, the header has {len(header)}",
                    )
                )
                continue
            # Personal columns are dropped here and never reach records or messages.
            row = {
                column: value
                for column, value in zip(header, cells, strict=True)
                if column in columns and column not in PERSONAL_FIELDS
            }
            problems: list[RowProblem] = []
            record = read_row(row, problems)
            key = record.get(key_column)
            if key and key in first_seen:
                problems.append(
                    RowProblem(f"{kind}.duplicate_code", f"duplicate {key_column} (first at row {first_seen[key]})")
                )
            record_key = f"{kind} {label} row {number}" + (f" ({key_column} {key})" if key else "")
            if problems:
                # One failure per row (module docstring): the limit above counts rows, not problems.
                rejects.append(row_failure(record_key, problems, str(key) if key else None))
                continue
            if key:
                first_seen[key] = number
            records.append(record)
    except _CsvBoundExceeded as problem:
        return _whole_file_reject(kind, label, f"{kind}.size", str(problem), decoded.encoding)
    except csv.Error as problem:
        return _whole_file_reject(
            kind, label, f"{kind}.format", f"not a readable CSV at row {reader.line_num}: {problem}", decoded.encoding
        )
    if header is None:
        return _whole_file_reject(kind, label, f"{kind}.header", "empty file: no header row", decoded.encoding)
    if len(rejects) > limits.max_rejected_rows:  # the last rows may be the ones over the limit
        return too_many_rejects()
    log.info("%s %s (%s): %d row(s), %d rejected", kind, label, decoded.encoding, len(records), len(rejects))
    return ReadResult(label, records, rejects, [], decoded.encoding)


# The helpers below add each problem with the rule it breaks: `missing` is the rule of an empty
# required cell (None: the column is optional), `invalid` the rule of a value that cannot be read.


def text_cell(row: dict[str, str], column: str, problems: list[RowProblem], missing: str | None) -> str | None:
    value = nfc(row.get(column))
    if value is None and missing:
        problems.append(RowProblem(missing, f"missing {column}"))
    return value


def time_cell(
    row: dict[str, str], column: str, problems: list[RowProblem], missing: str | None, invalid: str
) -> datetime | None:
    text = (row.get(column) or "").strip()
    if not text:
        if missing:
            problems.append(RowProblem(missing, f"missing {column}"))
        return None
    try:
        return parse_datetime(text)
    except ValueError as problem:
        problems.append(RowProblem(invalid, f"{column}: {problem}"))
        return None


def day_or_time_cell(
    row: dict[str, str], column: str, problems: list[RowProblem], missing: str | None, invalid: str
) -> date | datetime | None:
    text = (row.get(column) or "").strip()
    if not text:
        if missing:
            problems.append(RowProblem(missing, f"missing {column}"))
        return None
    try:
        return parse_datetime(text) if ":" in text else parse_date(text)
    except ValueError as problem:
        problems.append(RowProblem(invalid, f"{column}: {problem}"))
        return None


def flag_cell(row: dict[str, str], column: str, problems: list[RowProblem], invalid: str) -> bool | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    if text not in FLAG_WORDS:
        problems.append(RowProblem(invalid, f"{column} must be 0, 1 or empty, got {text!r}"))
        return None
    return FLAG_WORDS[text]
