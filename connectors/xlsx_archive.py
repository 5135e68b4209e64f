"""An xlsx workbook checked whole before python-calamine reads it: a zip archive is scanned part by part
as it inflates (sizes and checksums against its headers, no DTD, the extent of every sheet's grid), so
that a hostile workbook is refused before the reader builds anything from it.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

from python_calamine import CalamineError, CalamineWorkbook

from baocao.connectors.tabular import FileLimits, SpreadsheetError

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


def check_archive(data: bytes, source: str, limits: FileLimits) -> None:
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


def open_workbook(path: Path, limits: FileLimits) -> CalamineWorkbook:
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
    check_archive(data, path.name, limits)
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (CalamineError, OSError, ValueError) as problem:
        raise SpreadsheetError(f"workbook {path.name}: not a readable workbook ({type(problem).__name__})") from None
