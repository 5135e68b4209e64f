"""Source kinds `ict_workbook`, `egov_workbook`, `commune_csv` and `petition_csv` (department-systems.md §4).

Yearly self-assessment workbooks and small units' CSV exports.

Workbooks are read with python-calamine; headers are found below any title block and matched
tolerantly (case, spacing, punctuation, decomposed Unicode). CSV files are decoded by
`transforms.vietnamese.decode_text` (UTF-8 with or without BOM, Windows-1258, TCVN3); a file that
cannot be decoded with confidence is rejected whole with the reason, never read as mojibake.
Every reader returns clean values plus rejected rows with reasons, and lists rows that are not
data (headings, totals, footers) as skipped: no row disappears silently. Identifiers stay text
with their leading zeros. Applicants' personal data in the commune export is never copied.

Rules are named `<kind>.<what>` (`kind` is `commune`, `petition`, `ict` or `egov`), so that the
quarantine can be filtered by what is wrong. A CSV row breaks one of `CSV_ROW_RULES` (listed there
with their meaning): `field_count`, `code_missing`, `agency_missing`, `received_missing`,
`date_invalid` and `duplicate_code` for both kinds; `channel_missing`, `channel_unknown`,
`status_missing`, `status_unknown` and `flag_invalid` for dossiers; `satisfied_invalid` for
petitions. A file refused whole breaks one of `CSV_FILE_RULES`: `encoding`, `header`, `format`,
`size` or `rejects`. A workbook row breaks one of `WORKBOOK_ROW_RULES`: `code_missing`,
`code_as_number`, `name_missing`, `score_missing`, `score_invalid` and `duplicate_code`, and
`level_missing` and `level_unknown` for e-government levels; rows that are not data (headings,
footers) are listed as skipped under `<kind>.not_data`.

A rejected row, of a CSV file or a workbook, is one `RuleFailure`, never several: its rule is the
row's first problem (in column order, the duplicate check last) and its detail lists every problem
("; "-separated, each naming the column and the value), followed by "(also: <rule>, ...)" when the
row breaks other rules too; its key is the row's code when it has one. One failure per row keeps
`ReadResult.rejects` a list of rejected rows: callers count the rows read as records plus rejects,
and `FileLimits.max_rejected_rows` counts rows, not problems. Details quote only the columns the
reader keeps: the applicant's name, ID number and phone are dropped before a row is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from python_calamine import CalamineError, CalamineWorkbook

from baocao.connectors.catalogue_xml import ReadResult
from baocao.core.canonical import PERSONAL_FIELDS, nfc
from baocao.core.errors import FatalError, RuleFailure
from baocao.core.vietnamese import UndecodableTextError, decode_text, parse_date, parse_datetime, parse_number

log = logging.getLogger(__name__)

__all__ = [
    "CSV_FILE_RULES",
    "CSV_ROW_RULES",
    "WORKBOOK_ROW_RULES",
    "Block",
    "ReadResult",
    "SpreadsheetError",
    "read_commune_csv",
    "read_egov_workbook",
    "read_ict_workbook",
    "read_petition_csv",
]


class RowProblem(NamedTuple):
    """One problem of a CSV or workbook row: the rule it breaks and what is wrong (naming the column and the value)."""

    rule: str
    text: str


def _row_failure(record: str, problems: Sequence[RowProblem], key: str | None = None) -> RuleFailure:
    """A rejected row's one failure: under its first problem's rule, with every problem in the detail."""
    rule = problems[0].rule
    detail = "; ".join(problem.text for problem in problems)
    others = [other for other in dict.fromkeys(problem.rule for problem in problems) if other != rule]
    if others:
        detail += f" (also: {', '.join(others)})"
    return RuleFailure(rule, record, detail, key)


class SpreadsheetError(FatalError):
    """A workbook or CSV file that cannot be read at all (too big, not a workbook, no header)."""


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_bytes: int = 50 * 1024 * 1024
    # An xlsx file is a zip archive: what its members really inflate to is bounded too (a small file
    # may unpack hugely, and a member's header may lie about its size). A province's self-assessment
    # workbook unpacks to a few MB.
    max_unpacked_bytes: int = 100 * 1024 * 1024
    max_members: int = 1_000
    # The reader builds each sheet as a dense grid from A1 to its last cell (one cell at XFD1048576
    # is 17 billion cells, and the allocation failure aborts the process), so the sheets' extent is
    # bounded before any is built: 200,000 cells (25,000 units × 8 columns) read in ~60 MB on top of
    # the imports; a province's workbook has fewer than 10,000.
    max_cells: int = 200_000
    header_search_rows: int = 30
    # CSV: a dossier line is a few hundred characters and a commune's export some 100,000 lines. The
    # bounds keep a hostile file's cost near its size: one line of 40 million ';' was a list of 40
    # million fields, and 20 million short bad lines were 20 million rejects (6 GB).
    max_csv_lines: int = 2_000_000
    max_line_chars: int = 65_536
    max_rejected_rows: int = 10_000


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


def header_key(value: object) -> str:
    """A header or sheet name compared tolerantly: NFC, case-folded, a trailing "(...)" dropped,
    punctuation and runs of spaces or line breaks made one space."""
    text = unicodedata.normalize("NFC", str(value or "")).casefold()
    text = re.sub(r"\([^)]*\)\s*$", "", text)
    return re.sub(r"[\W_]+", " ", text).strip()


# ---------------------------------------------------------------- workbooks


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # all that Office writes
_INFLATE_CHUNK = 1 << 20
# A DTD is the vehicle of entity-expansion and external-entity attacks; no part of a workbook has one.
_DTD_MARKERS = tuple(
    marker.encode(codec) for marker in ("<!DOCTYPE", "<!ENTITY") for codec in ("utf-8", "utf-16-le", "utf-16-be")
)
_UTF16_STARTS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<\x00", b"\x00<")
# Row and cell start tags as the reader matches them: by local name, whatever the prefix, with quoted
# attribute values skipped as a whole (a '>' inside one does not end the tag).
_GRID_TAG = re.compile(rb"""<(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>""")
_ANY_TAG = re.compile(rb"""<(?:[^>"']|"[^"]*"|'[^']*')*>""")
_REFERENCE = re.compile(rb"""\sr\s*=\s*["']\s*\$?([A-Za-z]*)\$?([0-9]*)""")
_MAX_TAG_BYTES = 1 << 20


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper()[:8]:  # 8 letters is far past XFD already
        number = number * 26 + letter - 64
    return number


def _row_number(digits: bytes) -> int:
    return int(digits) if len(digits) <= 12 else 10**12  # far past row 1,048,576 already


class _MemberScan:
    """One zip member read as it inflates: a DTD anywhere in it, and the grid its row and cell tags
    span (rows and cells without a reference follow the previous one, as the reader counts them).
    Conservative: a tag inside a comment counts too, so the extent is never under-estimated."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.pending = b""
        self.tail = b""
        self.started = False
        self.row = self.column = -1
        self.last_row = self.last_column = -1

    def feed(self, chunk: bytes) -> None:
        if not self.started and chunk:
            self.started = True
            if chunk.startswith(_UTF16_STARTS):
                raise SpreadsheetError(f"{self.where} is UTF-16 text: workbook parts are read in UTF-8 only")
        window = self.tail + chunk
        for marker in _DTD_MARKERS:
            if marker in window:
                raise SpreadsheetError(
                    f"{self.where} declares a DTD or entities ({marker.decode('utf-8', 'replace')!r}), which "
                    "are refused: no part of a workbook has one"
                )
        self.tail = window[-32:]
        data = self.pending + chunk
        cut = data.rfind(b"<")
        if cut >= 0 and _ANY_TAG.match(data, cut) is None:
            # A tag that goes on in the next chunk.
            if len(data) - cut > _MAX_TAG_BYTES:
                raise SpreadsheetError(f"{self.where} has a tag longer than {_MAX_TAG_BYTES} bytes")
            self.pending, data = data[cut:], data[:cut]
        else:
            self.pending = b""
        for tag in _GRID_TAG.finditer(data):
            reference = _REFERENCE.search(tag[2])
            letters, digits = (reference[1], reference[2]) if reference else (b"", b"")
            if tag[1] == b"row":
                self.row = _row_number(digits) - 1 if digits else self.row + 1
                self.column = -1
                continue
            if digits:
                self.row = _row_number(digits) - 1
            self.column = _column_number(letters) - 1 if letters else self.column + 1
            self.last_row = max(self.last_row, self.row)
            self.last_column = max(self.last_column, self.column)

    @property
    def cells(self) -> int:
        return (self.last_row + 1) * (self.last_column + 1) if self.last_column >= 0 else 0


def _check_member(data: bytes, info: zipfile.ZipInfo, source: str, budget: int, limits: FileLimits) -> tuple[int, int]:
    """Inflate one member as the reader would, checking what its headers claim against what it holds;
    returns the bytes it inflated to and the cells of the grid it spans."""
    where = f"workbook {source}: part {info.filename}"
    if info.flag_bits & 0x1:
        raise SpreadsheetError(f"{where} is encrypted: password-protected workbooks are not read")
    if info.compress_type not in _ZIP_METHODS:
        raise SpreadsheetError(f"{where} uses compression method {info.compress_type}: only stored and deflated parts")
    offset = info.header_offset
    header = data[offset : offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or not header.startswith(b"PK\x03\x04"):
        raise SpreadsheetError(f"{where}: damaged archive (no local header where the directory points)")
    _, _, flags, method, _, _, crc, packed, size, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    name = data[offset + _LOCAL_HEADER.size : offset + _LOCAL_HEADER.size + name_length]
    local_name = name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if local_name != info.orig_filename or method != info.compress_type:
        raise SpreadsheetError(f"{where}: its local header and the archive directory disagree (name or method)")
    claimed = (info.CRC, info.compress_size, info.file_size)
    # Without a data descriptor (flag 8) or zip64 sizes, the local header repeats what the directory says.
    if not flags & 0x8 and 0xFFFFFFFF not in (packed, size) and (crc, packed, size) != claimed:
        raise SpreadsheetError(f"{where}: its local header and the archive directory disagree on sizes or checksum")
    start = offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + info.compress_size > len(data):
        raise SpreadsheetError(f"{where}: damaged archive (the part's data runs past the end of the file)")
    stored = memoryview(data)[start : start + info.compress_size]
    scan = _MemberScan(where)
    produced = checksum = 0
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    for position in range(0, info.compress_size, _INFLATE_CHUNK):
        piece: bytes | memoryview = stored[position : position + _INFLATE_CHUNK]
        while piece:
            if inflater is None:
                out, piece = bytes(piece), b""
            else:
                out = inflater.decompress(piece, min(_INFLATE_CHUNK, info.file_size - produced + 1))
                piece = inflater.unconsumed_tail
            produced += len(out)
            if produced > info.file_size:
                raise SpreadsheetError(
                    f"{where} inflates to more than the {info.file_size} bytes its header declares "
                    "(a zip bomb lies about its sizes): refused"
                )
            if produced > budget:
                raise SpreadsheetError(
                    f"workbook {source}: unpacks to more than the limit of {limits.max_unpacked_bytes} bytes "
                    f"(at part {info.filename})"
                )
            checksum = zlib.crc32(out, checksum)
            scan.feed(out)
            if inflater is not None and (inflater.eof or not out):
                break
        if inflater is not None and inflater.eof:
            if inflater.unused_data or position + _INFLATE_CHUNK < info.compress_size:
                raise SpreadsheetError(f"{where}: compressed data goes on past the end of its stream: refused")
            break
    if inflater is not None and not inflater.eof:
        raise SpreadsheetError(f"{where}: damaged archive (the compressed stream is cut off)")
    if produced != info.file_size or checksum != info.CRC:
        raise SpreadsheetError(
            f"{where}: holds {produced} bytes with checksum {checksum:08x}, its header says {info.file_size} "
            f"bytes and {info.CRC:08x}: damaged or forged archive"
        )
    if scan.cells > limits.max_cells:
        raise SpreadsheetError(
            f"{where} spans {scan.last_row + 1} rows × {scan.last_column + 1} columns = {scan.cells} cells, more "
            f"than the limit of {limits.max_cells} (the reader builds the whole grid from A1): refused"
        )
    return produced, scan.cells


def _check_archive(data: bytes, source: str, limits: FileLimits) -> None:
    """An Office Open XML workbook (xlsx, xlsm) whose every part is checked before the reader sees it:
    count, names, compression method, real inflated sizes against the headers and the limit, checksums,
    no DTD, and the extent of every grid."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise SpreadsheetError(
            f"workbook {source}: a binary Excel 97-2003 (.xls) workbook, which is not read (its grid cannot be "
            "bounded before it is built): save it as .xlsx"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as problem:
        raise SpreadsheetError(f"workbook {source}: not an xlsx workbook (not a zip archive: {problem})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise SpreadsheetError(
                f"workbook {source}: {len(members)} parts, more than the limit of {limits.max_members}"
            )
        names = [member.filename for member in members]
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise SpreadsheetError(f"workbook {source}: the part {duplicate} appears twice: damaged or forged archive")
        if "xl/workbook.xml" not in names:
            kind = (
                "an xlsb (binary) workbook"
                if "xl/workbook.bin" in names
                else "an OpenDocument spreadsheet"
                if "content.xml" in names
                else "not an xlsx workbook"
            )
            raise SpreadsheetError(
                f"workbook {source}: {kind} (no xl/workbook.xml); only xlsx and xlsm workbooks are read: "
                "save it as .xlsx"
            )
        declared = sum(member.file_size for member in members)
        if declared > limits.max_unpacked_bytes:
            raise SpreadsheetError(
                f"workbook {source}: unpacks to {declared} bytes, more than the limit of {limits.max_unpacked_bytes}"
            )
        budget, cells = limits.max_unpacked_bytes, 0
        for member in members:
            produced, grid = _check_member(data, member, source, budget, limits)
            budget -= produced
            cells += grid
        if cells > limits.max_cells:
            raise SpreadsheetError(
                f"workbook {source}: its sheets span {cells} cells in all, more than the limit of {limits.max_cells} "
                "(the reader builds every grid whole): refused"
            )


def _open_workbook(path: Path, limits: FileLimits) -> CalamineWorkbook:
    """The workbook, checked whole first; the reader is handed the very bytes that were checked."""
    if path.is_symlink() or not path.is_file():
        raise SpreadsheetError(f"workbook {path.name}: not found (or not a regular file)")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise SpreadsheetError(f"workbook {path.name}: {size} bytes, more than the limit of {limits.max_bytes}")
    with path.open("rb") as handle:
        data = handle.read(limits.max_bytes + 1)  # the file may grow between stat and read
    if len(data) > limits.max_bytes:
        raise SpreadsheetError(f"workbook {path.name}: more than the limit of {limits.max_bytes} bytes")
    _check_archive(data, path.name, limits)
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (CalamineError, OSError, ValueError) as problem:
        raise SpreadsheetError(f"workbook {path.name}: not a readable workbook ({type(problem).__name__})") from None


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
    workbook = _open_workbook(path, limits)
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
                rejects.append(_row_failure(key, named, code))
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


# ---------------------------------------------------------------- CSV files

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
HOSO_REQUIRED = tuple(HOSO_MISSING)
PETITION_COLUMNS = ("ma_phan_anh", "ma_donvi", "ngay_nhan", "han_tra_loi", "ngay_tra_loi", "hai_long")
PETITION_MISSING = {
    "ma_phan_anh": "petition.code_missing",
    "ma_donvi": "petition.agency_missing",
    "ngay_nhan": "petition.received_missing",
}
PETITION_REQUIRED = tuple(PETITION_MISSING)
FLAG_WORDS = {"0": False, "1": True}

# Every rule a CSV row can break, with what it means (the detail names the column and the value).
CSV_ROW_RULES: Mapping[str, str] = {
    "commune.field_count": "the line has more or fewer fields than the header",
    "commune.code_missing": "ma_hoso is empty",
    "commune.agency_missing": "ma_donvi is empty",
    "commune.channel_missing": "hinhthuc_nop is empty",
    "commune.channel_unknown": "hinhthuc_nop is not a channel code (1, 2, 3)",
    "commune.status_missing": "trang_thai is empty",
    "commune.status_unknown": "trang_thai is not a status code (1-6, 9)",
    "commune.received_missing": "ngay_nhan is empty",
    "commune.date_invalid": "ngay_nhan, ngay_hen_tra, ngay_tra or ngay_capnhat is not a valid dd/mm/yyyy HH:MM",
    "commune.flag_invalid": "co_phi, tt_truc_tuyen or da_so_hoa is not 0, 1 or empty",
    "commune.duplicate_code": "the ma_hoso of a row read before in the same file",
    "petition.field_count": "the line has more or fewer fields than the header",
    "petition.code_missing": "ma_phan_anh is empty",
    "petition.agency_missing": "ma_donvi is empty",
    "petition.received_missing": "ngay_nhan is empty",
    "petition.date_invalid": "ngay_nhan, han_tra_loi or ngay_tra_loi is not a valid dd/mm/yyyy [HH:MM]",
    "petition.satisfied_invalid": "hai_long is not 1, 0 or empty",
    "petition.duplicate_code": "the ma_phan_anh of a row read before in the same file",
}


def _for_kinds(kinds: Sequence[str], meanings: Mapping[str, str]) -> dict[str, str]:
    """The same rules for several kinds: `<kind>.<what>` → meaning."""
    return {f"{kind}.{what}": meaning for kind in kinds for what, meaning in meanings.items()}


# Every rule a workbook row can break (`ict.*` and `egov.*`; the detail names the column and the value).
WORKBOOK_ROW_RULES: Mapping[str, str] = {
    **_for_kinds(
        ("ict", "egov"),
        {
            "code_missing": "Mã đơn vị is empty",
            "code_as_number": "Mã đơn vị is a number: it has lost its leading zeros and dots",
            "name_missing": "Tên đơn vị is empty",
            "score_missing": "a score cell is empty",
            "score_invalid": "a score is not a number in Vietnamese format (302,531), is ambiguous or is negative",
            "duplicate_code": "the Mã đơn vị of a row read before, on this sheet or another",
        },
    ),
    "egov.level_missing": "Mức độ is empty",
    "egov.level_unknown": "Mức độ is not I, II, III, IV or Chưa xếp hạng",
}
# Every rule a CSV file refused whole breaks (its one reject, `ReadResult.refused_whole`).
CSV_FILE_RULES: Mapping[str, str] = _for_kinds(
    ("commune", "petition"),
    {
        "encoding": "the file cannot be decoded with confidence (UTF-8, Windows-1258 or TCVN3)",
        "header": "the file is empty or its header lacks a column",
        "format": "not a readable CSV (e.g. a stray quote)",
        "size": "more lines, or a longer line, than the limits",
        "rejects": "more rows rejected than FileLimits.max_rejected_rows: not an export of the expected form",
    },
)


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


def _read_csv(
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
                rejects.append(_row_failure(record_key, problems, str(key) if key else None))
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


def _text(row: dict[str, str], column: str, problems: list[RowProblem], missing: str | None) -> str | None:
    value = nfc(row.get(column))
    if value is None and missing:
        problems.append(RowProblem(missing, f"missing {column}"))
    return value


def _time(
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


def _day_or_time(
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


def _flag(row: dict[str, str], column: str, problems: list[RowProblem], invalid: str) -> bool | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    if text not in FLAG_WORDS:
        problems.append(RowProblem(invalid, f"{column} must be 0, 1 or empty, got {text!r}"))
        return None
    return FLAG_WORDS[text]


def _hoso_row(row: dict[str, str], problems: list[RowProblem]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column in HOSO_TEXT:
        record[column] = _text(row, column, problems, HOSO_MISSING.get(column))
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
        record[column] = _time(row, column, problems, HOSO_MISSING.get(column), "commune.date_invalid")
    for column in HOSO_FLAGS:
        record[column] = _flag(row, column, problems, "commune.flag_invalid")
    return {column: record[column] for column in HOSO_COLUMNS}


def read_commune_csv(
    source: Path | str | bytes, *, name: str | None = None, limits: FileLimits | None = None
) -> ReadResult:
    """A commune's dossier export: records with the `hoso` column names (§2) and values as the SQL
    table holds them (text codes, int channel and status, naive local datetimes, bool-or-None flags),
    without the applicant's name, ID number and phone. `;`-separated."""
    return _read_csv(
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


def _petition_row(row: dict[str, str], problems: list[RowProblem]) -> dict[str, Any]:
    record: dict[str, Any] = {
        column: _text(row, column, problems, PETITION_MISSING[column]) for column in ("ma_phan_anh", "ma_donvi")
    }
    for column in ("ngay_nhan", "han_tra_loi", "ngay_tra_loi"):
        record[column] = _day_or_time(row, column, problems, PETITION_MISSING.get(column), "petition.date_invalid")
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
    return _read_csv(
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
