"""Writers of the file sources as departments produce them (department-systems.md §3 and §4).

ICT self-assessment and e-government maturity workbooks (title block above the header, scores
partly as Vietnamese-format text), the procedure catalogue XML, commune dossier CSVs in UTF-8,
Windows-1258 or TCVN3, and the petition CSV. The workbooks reproduce published figures: Lâm Đồng's
2019 IT-application ranking (its top three departments and its first district; the other units'
scores are invented, lower) and Gia Lai's 2019 e-government maturity levels (the counts per level
are published; the scores are invented). Everything is deterministic.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from baocao.core.vietnamese import encode_text, format_date, format_datetime, format_number
from baocao.simulators.onestop import names

DEPARTMENT_SHEET = "Sở ban ngành"
DISTRICT_SHEET = "UBND cấp huyện"
COMMUNE_SHEET = "UBND cấp xã"
ICT_HEADER = (
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Hạ tầng kỹ thuật",
    "Nguồn nhân lực",
    "Ứng dụng CNTT",
    "Chính sách, đầu tư",
    "Ghi chú",
)
EGOV_HEADER = ("STT", "Mã đơn vị", "Tên đơn vị", "Điểm điều kiện sẵn sàng", "Mức độ")
HOSO_COLUMNS = (
    "ma_hoso",
    "ma_donvi",
    "ma_thutuc",
    "ma_linhvuc",
    "ten_linhvuc",
    "hinhthuc_nop",
    "ngay_nhan",
    "ngay_hen_tra",
    "ngay_tra",
    "trang_thai",
    "co_phi",
    "tt_truc_tuyen",
    "da_so_hoa",
    "ho_ten",
    "so_cccd",
    "dien_thoai",
    "ngay_capnhat",
)
PETITION_COLUMNS = ("ma_phan_anh", "ma_donvi", "ngay_nhan", "han_tra_loi", "ngay_tra_loi", "hai_long")
UNRANKED_TEXT = "Chưa xếp hạng"


def department_code(number: int, suffix: str = "H99") -> str:
    return f"000.00.{number:02d}.{suffix}"


def district_code(district: int, suffix: str = "H99") -> str:
    return f"000.{district:02d}.00.{suffix}"


def commune_code(district: int, number: int, suffix: str = "H99") -> str:
    return f"000.{district:02d}.{number:02d}.{suffix}"


# ---------------------------------------------------------------- ICT ranking (Lâm Đồng 2019)


@dataclass(frozen=True, slots=True)
class IctScore:
    code: str
    name: str
    infrastructure: Decimal
    human_resources: Decimal
    applications: Decimal
    policy: Decimal
    note: str | None = None

    @property
    def total(self) -> Decimal:
        return self.infrastructure + self.human_resources + self.applications + self.policy


def _ict(code: str, name: str, *scores: str, note: str | None = None) -> IctScore:
    infrastructure, human_resources, applications, policy = (Decimal(score) for score in scores)
    return IctScore(code, name, infrastructure, human_resources, applications, policy, note)


LAM_DONG_2019_DEPARTMENTS: tuple[IctScore, ...] = (
    _ict(department_code(12), "Sở Thông tin và Truyền thông", "60", "60", "275", "70"),  # 465.00, first
    _ict(department_code(2), "Sở Tài chính", "60", "59.5", "274.73", "70"),  # 464.23, second
    _ict(department_code(10), "Sở Giáo dục và Đào tạo", "58", "60", "274", "70"),  # 462.00, third
    _ict(department_code(1), "Sở Tư pháp", "57.5", "58", "270.25", "68"),
    _ict(department_code(3), "Sở Kế hoạch và Đầu tư", "58", "57", "268.5", "69"),
    _ict(department_code(13), "Sở Nội vụ", "55", "58.25", "265", "67"),
    _ict(department_code(6), "Sở Tài nguyên và Môi trường", "56", "55.5", "262.4", "66"),
    _ict(department_code(9), "Sở Y tế", "54", "56", "258.75", "65"),
    _ict(department_code(4), "Sở Xây dựng", "53.5", "54", "255.1", "64"),
    _ict(department_code(5), "Sở Giao thông vận tải", "52", "55", "250.32", "62"),
    _ict(department_code(8), "Sở Công Thương", "51", "52.5", "248", "61"),
    _ict(department_code(7), "Sở Nông nghiệp và Phát triển nông thôn", "50", "51", "240.6", "60"),
    _ict(department_code(14), "Sở Lao động - Thương binh và Xã hội", "49.5", "50", "236.2", "58"),
    _ict(department_code(15), "Sở Văn hóa, Thể thao và Du lịch", "48", "49", "230", "57"),
    _ict(department_code(11), "Sở Khoa học và Công nghệ", "47", "50", "225.45", "56"),
    _ict(department_code(16), "Sở Ngoại vụ", "45", "46", "210.8", "52"),
    _ict(department_code(17), "Ban Dân tộc", "44", "45", "205.5", "50", note="Chưa nộp hồ sơ minh chứng"),
    _ict(department_code(18), "Thanh tra tỉnh", "42", "44", "198.3", "48"),
    _ict(department_code(19), "Ban Quản lý các khu công nghiệp", "40", "42", "190", "45"),
)

LAM_DONG_2019_DISTRICTS: tuple[IctScore, ...] = (
    _ict(district_code(1), "TP. Đà Lạt", "50", "40", "302.531", "60"),  # 452.531, first
    _ict(district_code(2), "TP. Bảo Lộc", "49", "40", "298.2", "58"),
    _ict(district_code(3), "Huyện Đức Trọng", "48", "38.5", "290.75", "57"),
    _ict(district_code(4), "Huyện Lâm Hà", "47", "38", "285.4", "55"),
    _ict(district_code(5), "Huyện Di Linh", "46.5", "37", "280.125", "54"),
    _ict(district_code(6), "Huyện Đơn Dương", "45", "36", "276.8", "53"),
    _ict(district_code(7), "Huyện Bảo Lâm", "44", "36", "270.35", "52"),
    _ict(district_code(8), "Huyện Lạc Dương", "43", "35", "265", "50"),
    _ict(district_code(9), "Huyện Đạ Huoai", "42", "34.5", "258.6", "49"),
    _ict(district_code(10), "Huyện Đạ Tẻh", "41", "34", "252.15", "48"),
    _ict(district_code(11), "Huyện Cát Tiên", "40", "33", "245.9", "47"),
    _ict(district_code(12), "Huyện Đam Rông", "38", "32", "236.45", "45"),
)

LAM_DONG_2019_COMMUNES: tuple[IctScore, ...] = (
    _ict(commune_code(1, 1), "Phường 1", "30", "25", "180.5", "40"),
    _ict(commune_code(1, 2), "Xã Tà Nung", "22", "18", "120.25", "30"),
    _ict(commune_code(1, 3), "Xã Xuân Thọ", "24", "20", "131", "32"),
    _ict(commune_code(3, 1), "Thị trấn Liên Nghĩa", "28", "24", "170.75", "38"),
    _ict(commune_code(8, 4), "Xã Đạ Sar", "20", "15", "98.4", "25"),
)

LAM_DONG_2019_ICT: dict[str, tuple[IctScore, ...]] = {
    DEPARTMENT_SHEET: LAM_DONG_2019_DEPARTMENTS,
    DISTRICT_SHEET: LAM_DONG_2019_DISTRICTS,
    COMMUNE_SHEET: LAM_DONG_2019_COMMUNES,
}


def _put(sheet: Worksheet, row: int, column: int, value: object) -> None:
    """Write a cell; text that begins like a formula stays text (§4: such cells are data)."""
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        cell.data_type = "s"


def _title_block(sheet: Worksheet, province: str, title: str, subtitle: str) -> int:
    """The administrative letterhead and title above the table; returns the header's row number."""
    _put(sheet, 1, 1, "UỶ BAN NHÂN DÂN")
    _put(sheet, 1, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    _put(sheet, 2, 1, f"TỈNH {province.upper()}")
    _put(sheet, 2, 5, "Độc lập - Tự do - Hạnh phúc")
    _put(sheet, 4, 1, title)
    _put(sheet, 5, 1, subtitle)
    sheet.merge_cells(start_row=4, start_column=1, end_row=4, end_column=8)
    return 7


def _header_variant(title: str, sheet_name: str) -> str:
    """Headers as different offices type them: decomposed Unicode (the district sheet), line breaks
    and doubled spaces in other case (the commune sheet)."""
    if sheet_name == DISTRICT_SHEET:
        return unicodedata.normalize("NFD", title)
    if sheet_name == COMMUNE_SHEET:
        return title.upper().replace(" ", "  ", 1) if " " in title else title.lower()
    return title


def _score_cell(value: Decimal, as_text: bool) -> object:
    if as_text:
        return format_number(value)
    return int(value) if value == value.to_integral_value() else float(value)


def write_ict_workbook(
    path: Path | str,
    *,
    year: int = 2019,
    province: str = "Lâm Đồng",
    blocks: dict[str, tuple[IctScore, ...]] | None = None,
) -> Path:
    """The yearly ICT self-assessment workbook: one sheet per block, a title block above each header,
    a section heading and a footer, and non-integer scores on alternate rows as Vietnamese text."""
    blocks = LAM_DONG_2019_ICT if blocks is None else blocks

    def rows(sheet: Any, sheet_name: str, header_row: int, scores: Sequence[IctScore]) -> None:
        _put(sheet, header_row + 1, 1, "I")
        _put(sheet, header_row + 1, 3, f"Khối {sheet_name}")
        for index, score in enumerate(scores):
            row = header_row + 2 + index
            _put_unit(sheet, row, index, score.code, score.name)
            components = (score.infrastructure, score.human_resources, score.applications, score.policy)
            for offset, value in enumerate(components):
                text = value != value.to_integral_value() and (index % 2 == 0 or sheet_name == DISTRICT_SHEET)
                _put(sheet, row, 4 + offset, _score_cell(value, text))
            if score.note:
                _put(sheet, row, 8, score.note)
        footer = header_row + 2 + len(scores) + 1
        _put(sheet, footer, 3, f"Tổng số: {len(scores)} đơn vị")
        _put(sheet, footer + 2, 6, "GIÁM ĐỐC")

    return _write_blocks(
        path,
        province,
        blocks,
        lambda sheet_name: (
            f"KẾT QUẢ ĐÁNH GIÁ, XẾP HẠNG MỨC ĐỘ ỨNG DỤNG CÔNG NGHỆ THÔNG TIN NĂM {year}",
            f"(Kèm theo Quyết định số 123/QĐ-UBND ngày 20/3/{year + 1} của UBND tỉnh {province})",
        ),
        lambda sheet_name: [_header_variant(title, sheet_name) for title in ICT_HEADER],
        rows,
    )


def _put_unit(sheet: Any, row: int, index: int, code: str, name: str) -> None:
    """A unit's first three cells: number (STT), code, name."""
    _put(sheet, row, 1, index + 1)
    _put(sheet, row, 2, code)
    _put(sheet, row, 3, name)


def _write_blocks(
    path: Path | str,
    province: str,
    blocks: Mapping[str, Sequence[Any]],
    titles: Callable[[str], tuple[str, str]],
    header: Callable[[str], Sequence[str]],
    rows: Callable[[Any, str, int, Sequence[Any]], None],
) -> Path:
    """A yearly workbook: one sheet per block, each a title block, then the header row, then `rows`."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for sheet_name, entries in blocks.items():
        sheet = workbook.create_sheet(sheet_name)
        header_row = _title_block(sheet, province, *titles(sheet_name))
        for column, title in enumerate(header(sheet_name), start=1):
            _put(sheet, header_row, column, title)
        rows(sheet, sheet_name, header_row, entries)
    path = Path(path)
    workbook.save(path)
    return path


# ---------------------------------------------------------------- e-government maturity (Gia Lai 2019)


@dataclass(frozen=True, slots=True)
class MaturityLevel:
    code: str
    name: str
    readiness: Decimal | None
    level: str  # I, II, III, IV or UNRANKED


_GIA_LAI_DEPARTMENTS = (
    ("Sở Thông tin và Truyền thông", "IV", "86.4"),
    ("Văn phòng UBND tỉnh", "IV", "84.25"),
    ("Sở Nội vụ", "III", "78.5"),
    ("Sở Kế hoạch và Đầu tư", "III", "77.1"),
    ("Sở Tài chính", "III", "75.6"),
    ("Sở Tư pháp", "III", "74.35"),
    ("Sở Giáo dục và Đào tạo", "III", "72"),
    ("Sở Tài nguyên và Môi trường", "II", "66.8"),
    ("Sở Xây dựng", "II", "65.2"),
    ("Sở Giao thông vận tải", "II", "63.75"),
    ("Sở Công Thương", "II", "62.4"),
    ("Sở Y tế", "II", "61"),
    ("Sở Nông nghiệp và Phát triển nông thôn", "II", "59.3"),
    ("Sở Lao động - Thương binh và Xã hội", "II", "58.15"),
    ("Sở Văn hóa, Thể thao và Du lịch", "II", "56.9"),
    ("Sở Khoa học và Công nghệ", "I", "48.6"),
    ("Sở Ngoại vụ", "I", "45.2"),
    ("Ban Dân tộc", "UNRANKED", "32.5"),
    ("Thanh tra tỉnh", "UNRANKED", "30.75"),
    ("Ban Quản lý Khu kinh tế tỉnh", "UNRANKED", "28"),
)
_GIA_LAI_DISTRICTS = (
    "TP. Pleiku",
    "TX. An Khê",
    "TX. Ayun Pa",
    "Huyện KBang",
    "Huyện Đak Đoa",
    "Huyện Chư Păh",
    "Huyện Ia Grai",
    "Huyện Mang Yang",
    "Huyện Kông Chro",
    "Huyện Đức Cơ",
    "Huyện Chư Prông",
    "Huyện Chư Sê",
    "Huyện Đak Pơ",
    "Huyện Ia Pa",
    "Huyện Krông Pa",
    "Huyện Phú Thiện",
    "Huyện Chư Pưh",
)

GIA_LAI_2019_DEPARTMENTS: tuple[MaturityLevel, ...] = tuple(
    MaturityLevel(department_code(number, "H99"), name, Decimal(score) if score else None, level)
    for number, (name, level, score) in enumerate(_GIA_LAI_DEPARTMENTS, start=1)
)
GIA_LAI_2019_DISTRICTS: tuple[MaturityLevel, ...] = tuple(
    MaturityLevel(
        district_code(number, "H99"),
        name,
        Decimal("81.5") if number == 1 else Decimal(40) - Decimal(number) / 2,
        "IV" if number == 1 else "UNRANKED",
    )
    for number, name in enumerate(_GIA_LAI_DISTRICTS, start=1)
)
GIA_LAI_2019_EGOV: dict[str, tuple[MaturityLevel, ...]] = {
    DEPARTMENT_SHEET: GIA_LAI_2019_DEPARTMENTS,
    DISTRICT_SHEET: GIA_LAI_2019_DISTRICTS,
}


def write_egov_workbook(
    path: Path | str,
    *,
    year: int = 2019,
    province: str = "Gia Lai",
    blocks: dict[str, tuple[MaturityLevel, ...]] | None = None,
) -> Path:
    """The yearly e-government maturity workbook (levels I-IV or `Chưa xếp hạng`), title block on top."""
    blocks = GIA_LAI_2019_EGOV if blocks is None else blocks

    def rows(sheet: Any, sheet_name: str, header_row: int, levels: Sequence[MaturityLevel]) -> None:
        for index, entry in enumerate(levels):
            row = header_row + 1 + index
            _put_unit(sheet, row, index, entry.code, entry.name)
            if entry.readiness is not None:
                _put(sheet, row, 4, _score_cell(entry.readiness, index % 3 == 0))
            _put(sheet, row, 5, UNRANKED_TEXT if entry.level == "UNRANKED" else entry.level)

    return _write_blocks(
        path,
        province,
        blocks,
        lambda sheet_name: (f"KẾT QUẢ ĐÁNH GIÁ MỨC ĐỘ CHÍNH QUYỀN ĐIỆN TỬ NĂM {year}", f"Khối: {sheet_name}"),
        lambda sheet_name: EGOV_HEADER,
        rows,
    )


# ---------------------------------------------------------------- procedure catalogue (XML)

ONLINE_WORDS = {"FULL": "TOAN_TRINH", "PARTIAL": "MOT_PHAN", "NONE": "KHONG"}


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: str
    name: str
    field_code: str
    agency_code: str
    online_type: str  # FULL, PARTIAL, NONE
    fee_required: bool
    online_payment: bool


def sample_catalogue(count: int = 40, seed: int = 11, suffix: str = "H99") -> list[CatalogueEntry]:
    """Procedures of the departments in the one-stop simulator's vocabulary, national-style codes."""
    chooser = random.Random(seed)
    entries: list[CatalogueEntry] = []
    for index in range(count):
        number, department = index % len(names.DEPARTMENTS), names.DEPARTMENTS[index % len(names.DEPARTMENTS)]
        field_code = department.field_codes[index % len(department.field_codes)]
        field_name = next(entry.name for entry in names.FIELDS if entry.code == field_code)
        fee = chooser.random() < 0.45
        entries.append(
            CatalogueEntry(
                code=f"{1 + index % 2}.{chooser.randrange(10**6):06d}",
                name=f"{chooser.choice(names.GENERIC_ACTIONS)[0]} trong lĩnh vực {field_name.lower()}",
                field_code=field_code,
                agency_code=department_code(number + 1, suffix),
                online_type=chooser.choice(("FULL", "PARTIAL", "NONE")),
                fee_required=fee,
                online_payment=fee and chooser.random() < 0.6,
            )
        )
    return entries


def catalogue_xml(
    entries: Iterable[CatalogueEntry], *, extra_records: Sequence[str] = (), encoding: str = "UTF-8"
) -> bytes:
    """The catalogue export; `extra_records` are raw `<ThuTuc>` fragments (e.g. faulty ones) appended."""
    lines = [f'<?xml version="1.0" encoding="{encoding}"?>', "<DanhMucTTHC>"]
    for entry in entries:
        lines += [
            "  <ThuTuc>",
            f"    <MaTTHC>{escape(entry.code)}</MaTTHC>",
            f"    <TenTTHC>{escape(entry.name)}</TenTTHC>",
            f"    <MaLinhVuc>{escape(entry.field_code)}</MaLinhVuc>",
            f"    <MaDonVi>{escape(entry.agency_code)}</MaDonVi>",
            f"    <MucDo>{ONLINE_WORDS[entry.online_type]}</MucDo>",
            f"    <CoPhi>{int(entry.fee_required)}</CoPhi>",
            f"    <ThanhToanTrucTuyen>{int(entry.online_payment)}</ThanhToanTrucTuyen>",
            "  </ThuTuc>",
        ]
    lines += [f"  {record}" for record in extra_records]
    lines.append("</DanhMucTTHC>")
    return ("\n".join(lines) + "\n").encode(encoding)


def write_catalogue_xml(path: Path | str, entries: Iterable[CatalogueEntry] | None = None, **options: Any) -> Path:
    path = Path(path)
    path.write_bytes(catalogue_xml(sample_catalogue() if entries is None else entries, **options))
    return path


# ---------------------------------------------------------------- commune dossier export (CSV)


def commune_dossiers(
    count: int = 30,
    seed: int = 5,
    *,
    agency_code: str = "000.01.02.H99",
    start: datetime = datetime(2019, 10, 15, 7, 30),
) -> list[dict[str, Any]]:
    """Rows of a commune's `hoso` table (§2) with the values the legacy application stores; the
    applicants (names, 12-digit CCCD with leading zero, phone numbers) are fictitious."""
    chooser = random.Random(seed)
    fields = [entry for entry in names.FIELDS if entry.code in names.COMMUNE_FIELD_CODES]
    unit = agency_code.split(".")
    rows: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        field = chooser.choice(fields)
        received = start + timedelta(days=chooser.randrange(0, 60), minutes=chooser.randrange(0, 9 * 60))
        due = received + timedelta(days=chooser.choice((1, 3, 5, 10, 15)))
        status = chooser.choice((1, 2, 3, 4, 4, 4, 4, 5, 6, 9))
        finished = received + timedelta(days=chooser.randrange(0, 20), hours=2) if status in (4, 5, 6) else None
        fee = chooser.random() < 0.3
        given = chooser.choice(names.GIVEN_NAMES_MALE + names.GIVEN_NAMES_FEMALE)
        rows.append(
            {
                "ma_hoso": f"H99.{unit[1]}.{unit[2]}-{received:%y%m%d}-{number:04d}",
                "ma_donvi": agency_code,
                "ma_thutuc": f"1.{chooser.randrange(10**6):06d}",
                "ma_linhvuc": field.code,
                "ten_linhvuc": field.name,
                "hinhthuc_nop": chooser.choice((1, 1, 2, 3)),
                "ngay_nhan": received,
                "ngay_hen_tra": due,
                "ngay_tra": finished,
                "trang_thai": status,
                "co_phi": int(fee),
                "tt_truc_tuyen": int(fee and chooser.random() < 0.5),
                "da_so_hoa": int(chooser.random() < 0.7),
                "ho_ten": f"{chooser.choice(names.FAMILY_NAMES)} {chooser.choice(names.MIDDLE_NAMES_MALE)} {given}",
                "so_cccd": f"068{chooser.randrange(10**9):09d}",
                "dien_thoai": f"0{chooser.randrange(10**9):09d}",
                "ngay_capnhat": finished or received,
            }
        )
    return rows


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value)
    return str(value)


def _csv_bytes(columns: Sequence[str], rows: Iterable[dict[str, Any]], encoding: str, delimiter: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(column)) for column in columns])
    return encode_text(buffer.getvalue(), encoding)


def commune_csv(rows: Iterable[dict[str, Any]], encoding: str = "utf-8", *, extra_lines: Sequence[str] = ()) -> bytes:
    """The commune export: `;`-separated, `dd/mm/yyyy HH:MM`, in `encoding` (utf-8, utf-8-sig,
    cp1258, tcvn3; vni for refusal tests); `extra_lines` are raw lines appended (faulty rows)."""
    data = _csv_bytes(HOSO_COLUMNS, rows, encoding, ";")
    plain = "utf-8" if encoding == "utf-8-sig" else encoding
    return data + b"".join(encode_text(line + "\r\n", plain) for line in extra_lines)


def write_commune_csv(path: Path | str, rows: Iterable[dict[str, Any]] | None = None, **options: Any) -> Path:
    path = Path(path)
    path.write_bytes(commune_csv(commune_dossiers() if rows is None else rows, **options))
    return path


# ---------------------------------------------------------------- petitions (CSV)


def petitions(
    count: int = 20,
    seed: int = 3,
    *,
    agency_code: str = "000.00.01.H99",
    start: datetime = datetime(2019, 3, 1, 8),
    days: int = 200,
) -> list[dict[str, Any]]:
    """Petitions (phản ánh, kiến nghị) received by an agency from `start` over `days` days: answered
    (on time or late) or not, rated or not; a 10-day deadline."""
    chooser = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        received = start + timedelta(days=chooser.randrange(0, days), minutes=chooser.randrange(600))
        deadline = received + timedelta(days=10)
        answered = received + timedelta(days=chooser.randrange(1, 14)) if chooser.random() < 0.85 else None
        satisfied = None if answered is None or chooser.random() < 0.3 else int(chooser.random() < 0.8)
        rows.append(
            {
                "ma_phan_anh": f"PA-{received:%Y}-{number:05d}",
                "ma_donvi": agency_code,
                "ngay_nhan": received,
                "han_tra_loi": deadline,
                "ngay_tra_loi": answered,
                "hai_long": satisfied,
            }
        )
    return rows


def _petition_cells(row: dict[str, Any]) -> dict[str, Any]:
    """Dates without a time as the feedback system writes them (`dd/mm/yyyy`); times go through `_csv_value`."""
    return {
        column: format_date(value) if isinstance(value, date) and not isinstance(value, datetime) else value
        for column, value in row.items()
    }


def petition_csv(rows: Iterable[dict[str, Any]], encoding: str = "utf-8", delimiter: str = ";") -> bytes:
    return _csv_bytes(PETITION_COLUMNS, (_petition_cells(row) for row in rows), encoding, delimiter)


def write_petition_csv(path: Path | str, rows: Iterable[dict[str, Any]] | None = None, **options: Any) -> Path:
    path = Path(path)
    path.write_bytes(petition_csv(petitions() if rows is None else rows, **options))
    return path


def bad_petitions(
    agency_code: str = "000.00.01.H99", received: datetime = datetime(2026, 8, 3, 9)
) -> list[dict[str, Any]]:
    """Rows a feedback system lets through and the pipeline must quarantine, one per fault, in this order:
    no petition code; an answer dated before the petition was received; a `hai_long` that is neither
    1, 0 nor empty."""
    deadline = received + timedelta(days=10)
    return [
        {
            "ma_phan_anh": None,
            "ma_donvi": agency_code,
            "ngay_nhan": received,
            "han_tra_loi": deadline,
            "ngay_tra_loi": received + timedelta(days=2),
            "hai_long": 1,
        },
        {
            "ma_phan_anh": "PA-LOI-TRA-LOI-TRUOC",
            "ma_donvi": agency_code,
            "ngay_nhan": received,
            "han_tra_loi": deadline,
            "ngay_tra_loi": received - timedelta(days=2),
            "hai_long": 0,
        },
        {
            "ma_phan_anh": "PA-LOI-HAI-LONG",
            "ma_donvi": agency_code,
            "ngay_nhan": received,
            "han_tra_loi": deadline,
            "ngay_tra_loi": received + timedelta(days=3),
            "hai_long": "có",
        },
    ]


def petition_export(
    rows: Iterable[dict[str, Any]] | None = None,
    *,
    bad_rows: Iterable[dict[str, Any]] | None = None,
    encoding: str = "utf-8-sig",
    delimiter: str = ";",
) -> bytes:
    """The feedback system's export as it arrives: UTF-8 with a BOM, `;`-separated (`,` also occurs;
    the reader takes the delimiter from the header), `dd/mm/yyyy HH:MM` or `dd/mm/yyyy`, with the
    `bad_petitions()` rows (or `bad_rows`) after the good ones. Deterministic."""
    good = list(petitions() if rows is None else rows)
    bad = list(bad_petitions() if bad_rows is None else bad_rows)
    return petition_csv([*good, *bad], encoding=encoding, delimiter=delimiter)


def write_petition_export(path: Path | str, rows: Iterable[dict[str, Any]] | None = None, **options: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(petition_export(rows, **options))
    return path
