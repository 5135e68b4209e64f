"""Workbooks and CSV exports: published figures read back, tolerant headers, rejects with reasons."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from python_calamine import CalamineWorkbook

from baocao.connectors.spreadsheets import (
    CSV_FILE_RULES,
    CSV_ROW_RULES,
    WORKBOOK_ROW_RULES,
    FileLimits,
    SpreadsheetError,
    header_key,
    parse_level,
    read_commune_csv,
    read_egov_workbook,
    read_ict_workbook,
    read_petition_csv,
)
from baocao.core.errors import RuleFailure
from baocao.core.vietnamese import encode_text
from baocao.simulators.files import (
    DEPARTMENT_SHEET,
    DISTRICT_SHEET,
    LAM_DONG_2019_COMMUNES,
    LAM_DONG_2019_DEPARTMENTS,
    LAM_DONG_2019_DISTRICTS,
    IctScore,
    commune_csv,
    commune_dossiers,
    petition_csv,
    petitions,
    write_commune_csv,
    write_egov_workbook,
    write_ict_workbook,
    write_petition_csv,
)

SCORES = ("infrastructure", "human_resources", "applications", "policy")


def _total(record: dict[str, Any]) -> Decimal:
    return sum((record[column] for column in SCORES), Decimal(0))


# ---------------------------------------------------------------- ICT workbook


@pytest.fixture(scope="module")
def ict(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return read_ict_workbook(write_ict_workbook(tmp_path_factory.mktemp("ict") / "ict-2019.xlsx"))


def test_ict_reproduces_lam_dong_2019(ict: Any) -> None:
    assert ict.rejects == []
    by_block = Counter(record["block"] for record in ict.records)
    assert by_block == {
        "DEPARTMENT": len(LAM_DONG_2019_DEPARTMENTS),
        "DISTRICT": len(LAM_DONG_2019_DISTRICTS),
        "COMMUNE": len(LAM_DONG_2019_COMMUNES),
    }
    departments = sorted((r for r in ict.records if r["block"] == "DEPARTMENT"), key=_total, reverse=True)
    assert [(r["agency_name"], _total(r)) for r in departments[:3]] == [
        ("Sở Thông tin và Truyền thông", Decimal("465.00")),
        ("Sở Tài chính", Decimal("464.23")),
        ("Sở Giáo dục và Đào tạo", Decimal("462.00")),
    ]
    first = departments[0]
    assert [first[column] for column in SCORES] == [60, 60, 275, 70]
    districts = sorted((r for r in ict.records if r["block"] == "DISTRICT"), key=_total, reverse=True)
    assert districts[0]["agency_name"] == "TP. Đà Lạt"
    assert [districts[0][column] for column in SCORES] == [50, 40, Decimal("302.531"), 60]
    assert _total(districts[0]) == Decimal("452.531")


def test_ict_values_are_clean(ict: Any) -> None:
    expected = {score.code: score for score in LAM_DONG_2019_DEPARTMENTS + LAM_DONG_2019_DISTRICTS}
    expected |= {score.code: score for score in LAM_DONG_2019_COMMUNES}
    for record in ict.records:
        score = expected[record["agency_code"]]
        assert record["agency_code"].startswith("000.")  # text, leading zeros kept
        assert record["agency_name"] == score.name == unicodedata.normalize("NFC", record["agency_name"])
        assert [record[column] for column in SCORES] == [
            score.infrastructure,
            score.human_resources,
            score.applications,
            score.policy,
        ]
        assert all(isinstance(record[column], Decimal) for column in SCORES)
    notes = {record["agency_name"]: record["note"] for record in ict.records if record["note"]}
    assert notes == {"Ban Dân tộc": "Chưa nộp hồ sơ minh chứng"}


def test_simulated_headers_really_vary(tmp_path: Path) -> None:
    workbook = CalamineWorkbook.from_path(str(write_ict_workbook(tmp_path / "ict.xlsx")))
    district_header = workbook.get_sheet_by_name(DISTRICT_SHEET).to_python(skip_empty_area=False)[6]
    commune_header = workbook.get_sheet_by_name("UBND cấp xã").to_python(skip_empty_area=False)[6]
    assert district_header[5] == unicodedata.normalize("NFD", "Ứng dụng CNTT") != "Ứng dụng CNTT"
    assert commune_header[1] == "MÃ  ĐƠN VỊ"


def test_ict_title_block_headings_and_footers_are_skipped_not_lost(ict: Any) -> None:
    # Header on row 7 below the title block; data from row 9; heading (row 8) and footers listed.
    assert min(record["row"] for record in ict.records) == 9
    assert len(ict.skipped) == 9
    assert all(failure.rule == "ict.not_data" for failure in ict.skipped)
    assert "[Sở ban ngành] row 8" in ict.skipped[0].record


def test_header_matching_tolerates_case_spacing_and_nfd() -> None:
    assert header_key("  Mã  đơn\nvị ") == header_key("MÃ ĐƠN VỊ") == "mã đơn vị"
    assert header_key(unicodedata.normalize("NFD", "Ứng dụng CNTT")) == "ứng dụng cntt"
    assert header_key("Chính sách đầu tư") == header_key("Chính sách, đầu tư")
    assert header_key("Hạ tầng kỹ thuật (80 điểm)") == "hạ tầng kỹ thuật"


def _workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # text that looks like a formula is data
    workbook.save(path)
    return path


ICT_HEADER = ["STT", "Mã đơn vị", "Tên đơn vị", "Hạ tầng kỹ thuật", "Nguồn nhân lực", "Ứng dụng CNTT"]
ICT_HEADER += ["Chính sách, đầu tư", "Ghi chú"]


def test_ict_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    rows = [
        ["BẢNG ĐIỂM"],
        [],
        ICT_HEADER,
        [1, "000.00.01.H99", "Sở Tư pháp", 50, "40,5", "200,125", 60, None],
        [2, 1.0, "Sở số", 50, 40, 200, 60],
        [3, "000.00.03.H99", "Sở chữ", 50, "abc", 200, 60],
        [4, "000.00.01.H99", "Sở trùng", 50, 40, 200, 60],
        [5, None, "Sở không mã", 50, 40, 200, 60],
        [6, "000.00.06.H99", "Sở âm", -1, 40, 200, 60],
        [7, "000.00.07.H99", "Sở thiếu", 50, None, "60.5", 60],
        [None, None, "Tổng cộng", None, None, None, None],
        [8, "000.00.08.H99", "Sở =lệnh", 50, 40, 200, 60, "=SUM(A1:A2)"],
    ]
    path = _workbook(tmp_path / "bad.xlsx", {"Sở ban ngành": rows})
    result = read_ict_workbook(path)
    assert [(r["agency_code"], r["row"]) for r in result.records] == [("000.00.01.H99", 4), ("000.00.08.H99", 12)]
    assert result.records[0]["human_resources"] == Decimal("40.5")
    assert result.records[1]["note"] == "=SUM(A1:A2)"  # formula-like text is data
    reasons = {failure.record.split("] ")[1]: failure.detail for failure in result.rejects}
    assert reasons["row 5"].startswith("Mã đơn vị is stored as a number")
    assert "Nguồn nhân lực: not a number in Vietnamese format: 'abc'" in reasons["row 6 (000.00.03.H99)"]
    assert reasons["row 7 (000.00.01.H99)"] == "duplicate Mã đơn vị 000.00.01.H99 (first at row 4)"
    assert reasons["row 8"] == "missing Mã đơn vị"
    assert reasons["row 9 (000.00.06.H99)"] == "Hạ tầng kỹ thuật is negative (-1)"
    assert "missing Nguồn nhân lực" in reasons["row 10 (000.00.07.H99)"]
    assert "'60.5'" in reasons["row 10 (000.00.07.H99)"]
    assert [failure.record.split("] ")[1] for failure in result.skipped] == ["row 11"]
    # Each rejected row under the rule of its first problem, keyed by its code when it has one.
    rules = {failure.record.split("] ")[1]: (failure.rule, failure.key) for failure in result.rejects}
    assert rules == {
        "row 5": ("ict.code_as_number", None),
        "row 6 (000.00.03.H99)": ("ict.score_invalid", "000.00.03.H99"),
        "row 7 (000.00.01.H99)": ("ict.duplicate_code", "000.00.01.H99"),
        "row 8": ("ict.code_missing", None),
        "row 9 (000.00.06.H99)": ("ict.score_invalid", "000.00.06.H99"),
        "row 10 (000.00.07.H99)": ("ict.score_missing", "000.00.07.H99"),
    }
    assert reasons["row 10 (000.00.07.H99)"].endswith("(also: ict.score_invalid)")
    assert {failure.rule for failure in result.rejects} <= set(WORKBOOK_ROW_RULES)


def test_the_same_unit_on_two_sheets_is_rejected(tmp_path: Path) -> None:
    line = [1, "000.00.01.H99", "Sở Tư pháp", 50, 40, 200, 60]
    path = _workbook(tmp_path / "two.xlsx", {DEPARTMENT_SHEET: [ICT_HEADER, line], "UBND cấp xã": [ICT_HEADER, line]})
    result = read_ict_workbook(path)
    assert [(r["block"], r["row"]) for r in result.records] == [("DEPARTMENT", 2)]
    [failure] = result.rejects
    assert failure.record == "ict two.xlsx [UBND cấp xã] row 2 (000.00.01.H99)"
    assert failure.detail == "duplicate Mã đơn vị 000.00.01.H99 (first at [Sở ban ngành] row 2)"


def test_ict_two_row_header_and_no_district_sheet(tmp_path: Path) -> None:
    rows = [
        ["KẾT QUẢ NĂM 2026"],
        ["STT", "Mã đơn vị", "Tên đơn vị", "Điểm thành phần", None, None, None, "Ghi chú"],
        [None, None, None, "Hạ tầng kỹ thuật", "Nguồn nhân lực", "Ứng dụng CNTT", "Chính sách, đầu tư"],
        [1, "000.01.01.H99", "UBND xã Tà Nung", 20, 15, "98,4", 25],
    ]
    result = read_ict_workbook(_workbook(tmp_path / "2026.xlsx", {"UBND cấp xã": rows, "Hướng dẫn": [["x"]]}))
    assert [(r["block"], r["applications"], r["row"]) for r in result.records] == [("COMMUNE", Decimal("98.4"), 4)]


def test_ict_structural_problems_raise(tmp_path: Path) -> None:
    with pytest.raises(SpreadsheetError, match="no header row with 'STT', 'Mã đơn vị'"):
        read_ict_workbook(_workbook(tmp_path / "a.xlsx", {"Sở ban ngành": [["Tên"], ["x"]]}))
    with pytest.raises(SpreadsheetError, match="none of the sheets"):
        read_ict_workbook(_workbook(tmp_path / "b.xlsx", {"Sheet1": [ICT_HEADER]}))
    with pytest.raises(SpreadsheetError, match="header lacks 'Ứng dụng CNTT'"):
        header = [title for title in ICT_HEADER if title != "Ứng dụng CNTT"]
        read_ict_workbook(_workbook(tmp_path / "c.xlsx", {"Sở ban ngành": [header]}))
    garbage = tmp_path / "d.xlsx"
    garbage.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(SpreadsheetError, match="d.xlsx"):
        read_ict_workbook(garbage)
    with pytest.raises(SpreadsheetError, match="not found"):
        read_ict_workbook(tmp_path / "missing.xlsx")


def test_workbook_size_limits(tmp_path: Path) -> None:
    path = write_ict_workbook(tmp_path / "ict.xlsx")
    with pytest.raises(SpreadsheetError, match="more than the limit of 1000"):
        read_ict_workbook(path, FileLimits(max_bytes=1000))
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    with pytest.raises(SpreadsheetError, match="unpacks to"):
        read_ict_workbook(path, FileLimits(max_unpacked_bytes=unpacked - 1))


# ---------------------------------------------------------------- e-government maturity


def test_egov_reproduces_gia_lai_2019(tmp_path: Path) -> None:
    result = read_egov_workbook(write_egov_workbook(tmp_path / "egov-2019.xlsx"))
    assert result.rejects == []
    levels = Counter((record["block"], record["level"]) for record in result.records)
    assert levels == {
        ("DEPARTMENT", "I"): 2,
        ("DEPARTMENT", "II"): 8,
        ("DEPARTMENT", "III"): 5,
        ("DEPARTMENT", "IV"): 2,
        ("DEPARTMENT", "UNRANKED"): 3,
        ("DISTRICT", "IV"): 1,
        ("DISTRICT", "UNRANKED"): 16,
    }
    first = result.records[0]
    assert (first["agency_code"], first["readiness_score"], first["level"]) == ("000.00.01.H99", Decimal("86.4"), "IV")
    assert all(isinstance(record["readiness_score"], Decimal) for record in result.records)


@pytest.mark.parametrize(
    ("cell", "level"),
    [
        ("I", "I"),
        ("iv", "IV"),
        (" Mức II ", "II"),
        ("Mức độ III", "III"),
        ("2", "II"),
        (3.0, "III"),
        ("Chưa xếp hạng", "UNRANKED"),
        ("chưa  xếp hạng", "UNRANKED"),
        ("Không xếp hạng", "UNRANKED"),
        (unicodedata.normalize("NFD", "Chưa xếp hạng"), "UNRANKED"),
    ],
)
def test_levels(cell: object, level: str) -> None:
    assert parse_level(cell) == level


def test_egov_bad_rows(tmp_path: Path) -> None:
    rows = [
        ["Mã đơn vị", "Tên đơn vị", "Điểm điều kiện sẵn sàng", "Mức độ"],
        ["000.00.01.H99", "Sở A", "70,5", "V"],
        ["000.00.02.H99", "Sở B", None, "II"],
        ["000.00.03.H99", "Sở C", None, None],
        ["000.00.04.H99", "Sở D", "10", "Chưa xếp hạng"],
        ["000.00.05.H99", "Sở E", None, "Chưa xếp hạng"],
        ["000.00.06.H99", "Sở F", "1.500", "II"],
    ]
    result = read_egov_workbook(_workbook(tmp_path / "egov.xlsx", {DEPARTMENT_SHEET: rows}))
    assert [(r["agency_code"], r["readiness_score"], r["level"]) for r in result.records] == [
        ("000.00.04.H99", Decimal(10), "UNRANKED")
    ]
    details = [failure.detail for failure in result.rejects]
    assert details == [
        "unknown level 'V' (expected I, II, III, IV or 'Chưa xếp hạng')",
        "missing Điểm điều kiện sẵn sàng",
        "missing Mức độ; missing Điểm điều kiện sẵn sàng (also: egov.score_missing)",
        "missing Điểm điều kiện sẵn sàng",  # unranked units have a score too
        "Điểm điều kiện sẵn sàng: '1.500' is ambiguous ('.' groups thousands); write 302,531 or a number",
    ]
    assert [failure.rule for failure in result.rejects] == [
        "egov.level_unknown",
        "egov.score_missing",
        "egov.level_missing",
        "egov.score_missing",
        "egov.score_invalid",
    ]
    assert [failure.key for failure in result.rejects] == [f"000.00.0{n}.H99" for n in (1, 2, 3, 5, 6)]


# ---------------------------------------------------------------- commune dossier CSV

PERSONAL = ("ho_ten", "so_cccd", "dien_thoai")


def _expected_commune_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    expected = []
    for row in rows:
        record = {column: value for column, value in row.items() if column not in PERSONAL}
        for column in ("co_phi", "tt_truc_tuyen", "da_so_hoa"):
            record[column] = bool(record[column])
        expected.append(record)
    return expected


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1258", "tcvn3"])
def test_commune_csv_in_each_encoding(encoding: str) -> None:
    rows = commune_dossiers(40)
    result = read_commune_csv(commune_csv(rows, encoding), name=f"xa-{encoding}.csv")
    assert result.encoding == encoding
    assert result.rejects == []
    assert result.records == _expected_commune_records(rows)
    assert {record["ma_donvi"] for record in result.records} == {"000.01.02.H99"}
    assert all(not set(PERSONAL) & set(record) for record in result.records)
    assert any(record["ten_linhvuc"] and not record["ten_linhvuc"].isascii() for record in result.records)


def test_commune_csv_from_a_path(tmp_path: Path) -> None:
    path = write_commune_csv(tmp_path / "xa-ta-nung.csv", encoding="tcvn3")
    result = read_commune_csv(path)
    assert result.source == "xa-ta-nung.csv"
    assert len(result.records) == 30


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (commune_csv(commune_dossiers(10), "vni"), "looks like VNI"),
        (commune_csv(commune_dossiers(10), "utf-8") + commune_csv(commune_dossiers(10), "cp1258"), "mixes UTF-8"),
        (bytes(range(0x80, 0x100)) * 20, "not a known 8-bit"),
        (commune_csv(commune_dossiers(10)).decode("cp1252", errors="replace").encode(), "Windows-1252|U\\+FFFD"),
    ],
)
def test_undecodable_commune_csv_is_rejected_whole_never_stored_as_mojibake(data: bytes, reason: str) -> None:
    result = read_commune_csv(data, name="xa.csv")
    assert result.records == []
    [failure] = result.rejects
    assert failure.rule == "commune.encoding"
    assert failure.record == "commune xa.csv (whole file)"
    assert re.search(reason, failure.detail)


def test_commune_bad_rows_are_rejected_by_row_without_personal_data() -> None:
    rows = commune_dossiers(5)
    bad = [
        "H99.01.02-191101-0099;000.01.02.H99;1.000001;LV-HOTICH;Hộ tịch;2;15/10/2019;;;4;0;0;1;Trần Bí Mật;0123;09;",
        ";000.01.02.H99;1.000001;LV-HOTICH;Hộ tịch;7;15/10/2019 08:00;;;8;2;0;1;Lê Riêng Tư;0123;09;",
        "chỉ;hai",
        f"{rows[0]['ma_hoso']};000.01.02.H99;1.000001;LV-HOTICH;Hộ tịch;1;15/10/2019 08:00;;;1;0;0;0;X;0;0;",
        "",
        "H99.01.02-191101-0100;000.01.02.H99;=1+1;LV-HOTICH;@SUM(1);1;01/11/2019 08:00;;;1;;;;Y;0;0;",
    ]
    result = read_commune_csv(commune_csv(rows, "cp1258", extra_lines=bad), name="xa.csv")
    assert [record["ma_hoso"] for record in result.records] == [row["ma_hoso"] for row in rows] + [
        "H99.01.02-191101-0100"
    ]
    formula_like = result.records[-1]
    assert (formula_like["ma_thutuc"], formula_like["ten_linhvuc"], formula_like["co_phi"]) == ("=1+1", "@SUM(1)", None)
    rejects = {failure.record: (failure.rule, failure.detail) for failure in result.rejects}
    assert rejects == {
        "commune xa.csv row 7 (ma_hoso H99.01.02-191101-0099)": (
            "commune.date_invalid",
            "ngay_nhan: not a time in dd/mm/yyyy HH:MM form: '15/10/2019'",
        ),
        "commune xa.csv row 8": (
            "commune.code_missing",
            "missing ma_hoso; hinhthuc_nop '7' is not one of [1, 2, 3]; trang_thai '8' is not one of "
            "[1, 2, 3, 4, 5, 6, 9]; co_phi must be 0, 1 or empty, got '2' "
            "(also: commune.channel_unknown, commune.status_unknown, commune.flag_invalid)",
        ),
        "commune xa.csv row 9": ("commune.field_count", "2 fields, the header has 17"),
        f"commune xa.csv row 10 (ma_hoso {rows[0]['ma_hoso']})": (
            "commune.duplicate_code",
            "duplicate ma_hoso (first at row 2)",
        ),
    }
    text = " ".join(f"{failure.record} {failure.detail}" for failure in result.rejects)
    assert "Bí Mật" not in text and "Riêng Tư" not in text


def test_commune_csv_whole_file_problems(tmp_path: Path) -> None:
    header_only = encode_text("ma_hoso;ma_donvi;ngay_nhan\r\nA;B;01/01/2019 08:00\r\n", "utf-8")
    result = read_commune_csv(header_only, name="thieu.csv")
    assert result.records == []
    assert result.rejects[0].rule == "commune.header"
    assert result.rejects[0].detail.startswith("header lacks ma_thutuc, ma_linhvuc")
    assert read_commune_csv(b"", name="rong.csv").rejects[0].detail == "empty file: no header row"
    with pytest.raises(SpreadsheetError, match="more than the limit of 100"):
        read_commune_csv(commune_csv(commune_dossiers(3)), limits=FileLimits(max_bytes=100))
    path = write_commune_csv(tmp_path / "lon.csv")
    with pytest.raises(SpreadsheetError, match="lon.csv: .* bytes, more than the limit of 100"):
        read_commune_csv(path, limits=FileLimits(max_bytes=100))


# ---------------------------------------------------------------- petitions CSV


@pytest.mark.parametrize(("delimiter", "encoding"), [(";", "utf-8"), (",", "utf-8-sig"), (";", "cp1258")])
def test_petition_csv(delimiter: str, encoding: str) -> None:
    rows = petitions(25)
    result = read_petition_csv(petition_csv(rows, encoding, delimiter), name="phan-anh.csv")
    assert result.rejects == []
    expected = [{**row, "hai_long": None if row["hai_long"] is None else bool(row["hai_long"])} for row in rows]
    assert result.records == expected
    assert {record["hai_long"] for record in result.records} == {True, False, None}


def test_petition_dates_and_bad_rows(tmp_path: Path) -> None:
    text = (
        "ma_phan_anh;ma_donvi;ngay_nhan;han_tra_loi;ngay_tra_loi;hai_long\n"
        "PA-1;000.00.01.H99;01/03/2019 08:00;11/03/2019;05/03/2019 10:30;1\n"
        "PA-2;000.00.01.H99;02/03/2019;12/03/2019;;\n"
        "PA-3;000.00.01.H99;2019-03-02;;;có\n"
        ";000.00.01.H99;02/03/2019;;;0\n"
    )
    result = read_petition_csv(write_petition_csv(tmp_path / "pa.csv", []).parent / "pa.csv")
    assert result.records == [] and result.rejects == []
    (tmp_path / "pa.csv").write_bytes(encode_text(text, "tcvn3"))
    result = read_petition_csv(tmp_path / "pa.csv")
    assert result.records == [
        {
            "ma_phan_anh": "PA-1",
            "ma_donvi": "000.00.01.H99",
            "ngay_nhan": datetime(2019, 3, 1, 8),
            "han_tra_loi": date(2019, 3, 11),
            "ngay_tra_loi": datetime(2019, 3, 5, 10, 30),
            "hai_long": True,
        },
        {
            "ma_phan_anh": "PA-2",
            "ma_donvi": "000.00.01.H99",
            "ngay_nhan": date(2019, 3, 2),
            "han_tra_loi": date(2019, 3, 12),
            "ngay_tra_loi": None,
            "hai_long": None,
        },
    ]
    assert [(failure.rule, failure.detail) for failure in result.rejects] == [
        (
            "petition.date_invalid",
            "ngay_nhan: not a date in dd/mm/yyyy form: '2019-03-02'; hai_long must be 1, 0 or empty, got 'có' "
            "(also: petition.satisfied_invalid)",
        ),
        ("petition.code_missing", "missing ma_phan_anh"),
    ]


def test_ict_scores_written_as_text_are_read_as_numbers(tmp_path: Path) -> None:
    block = {DISTRICT_SHEET: (IctScore("000.01.00.H99", "TP. Đà Lạt", *map(Decimal, ("50.5", "40", "302.531", "60"))),)}
    result = read_ict_workbook(write_ict_workbook(tmp_path / "one.xlsx", blocks=block))
    [record] = result.records
    assert (record["infrastructure"], record["applications"]) == (Decimal("50.5"), Decimal("302.531"))


# ---------------------------------------------------------------- CSV row rules

# A sound dossier line as a commune exports it, the applicant's personal columns included.
DOSSIER = {
    "ma_hoso": "H99.01.02-260701-0001",
    "ma_donvi": "000.01.02.H99",
    "ma_thutuc": "1.000001",
    "ma_linhvuc": "LV-HOTICH",
    "ten_linhvuc": "Hộ tịch",
    "hinhthuc_nop": "2",
    "ngay_nhan": "01/07/2026 08:00",
    "ngay_hen_tra": "05/07/2026 17:00",
    "ngay_tra": "",
    "trang_thai": "1",
    "co_phi": "0",
    "tt_truc_tuyen": "1",
    "da_so_hoa": "",
    "ho_ten": "Nguyễn Văn Riêng",
    "so_cccd": "079123456789",
    "dien_thoai": "0912345678",
    "ngay_capnhat": "01/07/2026 08:05",
}
PETITION = {
    "ma_phan_anh": "PA-0001",
    "ma_donvi": "000.00.01.H99",
    "ngay_nhan": "01/07/2026",
    "han_tra_loi": "10/07/2026",
    "ngay_tra_loi": "05/07/2026 10:30",
    "hai_long": "1",
}


def _line(base: dict[str, str], changes: dict[str, str], fields: int = 0) -> str:
    """One line of `base` with `changes`; `fields` (when not 0) fields more (> 0) or fewer (< 0)."""
    values = list({**base, **changes}.values())
    values = values + ["x"] * fields if fields >= 0 else values[:fields]
    return ";".join(values)


def _export(base: dict[str, str], *lines: str, encoding: str = "utf-8") -> bytes:
    """A CSV export: the header, the sound line of `base` (row 2), then `lines` (rows 3, ...)."""
    return encode_text("\n".join([";".join(base), _line(base, {}), *lines]) + "\n", encoding)


def _dossier(changes: dict[str, str], fields: int = 0) -> str:
    return _line(DOSSIER, {"ma_hoso": "H99.01.02-260701-0002", **changes}, fields)


def _petition(changes: dict[str, str], fields: int = 0) -> str:
    return _line(PETITION, {"ma_phan_anh": "PA-0002", **changes}, fields)


# (rule, the line that breaks exactly it, the quarantine's record key after "<kind> x.csv row 3", detail)
COMMUNE_RULE_CASES = [
    ("commune.field_count", _dossier({}, -1), "", "16 fields, the header has 17"),
    ("commune.code_missing", _dossier({"ma_hoso": ""}), "", "missing ma_hoso"),
    ("commune.agency_missing", _dossier({"ma_donvi": " "}), "-0002", "missing ma_donvi"),
    ("commune.channel_missing", _dossier({"hinhthuc_nop": ""}), "-0002", "missing hinhthuc_nop"),
    ("commune.channel_unknown", _dossier({"hinhthuc_nop": "4"}), "-0002", "hinhthuc_nop '4' is not one of [1, 2, 3]"),
    ("commune.status_missing", _dossier({"trang_thai": ""}), "-0002", "missing trang_thai"),
    (
        "commune.status_unknown",
        _dossier({"trang_thai": "7"}),
        "-0002",
        "trang_thai '7' is not one of [1, 2, 3, 4, 5, 6, 9]",
    ),
    ("commune.received_missing", _dossier({"ngay_nhan": ""}), "-0002", "missing ngay_nhan"),
    (
        "commune.date_invalid",
        _dossier({"ngay_tra": "31/06/2026 10:00"}),
        "-0002",
        "ngay_tra: not a valid time: '31/06/2026 10:00' (day is out of range for month)",
    ),
    (
        "commune.date_invalid",
        _dossier({"ngay_hen_tra": "2026-07-05 17:00"}),
        "-0002",
        "ngay_hen_tra: not a time in dd/mm/yyyy HH:MM form: '2026-07-05 17:00'",
    ),
    ("commune.flag_invalid", _dossier({"da_so_hoa": "có"}), "-0002", "da_so_hoa must be 0, 1 or empty, got 'có'"),
    (
        "commune.duplicate_code",
        _dossier({"ma_hoso": DOSSIER["ma_hoso"]}),
        "-0001",
        "duplicate ma_hoso (first at row 2)",
    ),
]
PETITION_RULE_CASES = [
    ("petition.field_count", _petition({}, 1), "", "7 fields, the header has 6"),
    ("petition.code_missing", _petition({"ma_phan_anh": ""}), "", "missing ma_phan_anh"),
    ("petition.agency_missing", _petition({"ma_donvi": ""}), "PA-0002", "missing ma_donvi"),
    ("petition.received_missing", _petition({"ngay_nhan": ""}), "PA-0002", "missing ngay_nhan"),
    (
        "petition.date_invalid",
        _petition({"han_tra_loi": "31/02/2026"}),
        "PA-0002",
        "han_tra_loi: not a valid date: '31/02/2026' (day is out of range for month)",
    ),
    (
        "petition.date_invalid",
        _petition({"ngay_tra_loi": "05/07/2026 25:00"}),
        "PA-0002",
        "ngay_tra_loi: not a valid time: '05/07/2026 25:00' (hour must be in 0..23)",
    ),
    (
        "petition.satisfied_invalid",
        _petition({"hai_long": "có"}),
        "PA-0002",
        "hai_long must be 1, 0 or empty, got 'có'",
    ),
    (
        "petition.duplicate_code",
        _petition({"ma_phan_anh": "PA-0001"}),
        "PA-0001",
        "duplicate ma_phan_anh (first at row 2)",
    ),
]


def test_every_csv_row_rule_is_tested_and_apart_from_the_whole_file_rules() -> None:
    assert {case[0] for case in COMMUNE_RULE_CASES + PETITION_RULE_CASES} == set(CSV_ROW_RULES)
    assert not set(CSV_ROW_RULES) & set(CSV_FILE_RULES)
    assert all(re.fullmatch(r"(commune|petition)\.[a-z_]+", rule) for rule in [*CSV_ROW_RULES, *CSV_FILE_RULES])


@pytest.mark.parametrize(("rule", "line", "key", "detail"), COMMUNE_RULE_CASES)
def test_a_dossier_line_breaking_one_rule_is_quarantined_under_it(rule: str, line: str, key: str, detail: str) -> None:
    result = read_commune_csv(_export(DOSSIER, line, encoding="cp1258"), name="x.csv")
    assert [record["ma_hoso"] for record in result.records] == [DOSSIER["ma_hoso"]]
    suffix = f" (ma_hoso H99.01.02-260701{key})" if key else ""
    assert result.rejects == [RuleFailure(rule, f"commune x.csv row 3{suffix}", detail)]
    assert not result.refused_whole
    # The applicant's name, ID number and phone are on the line but in no reason.
    for personal in ("Riêng", "079123456789", "0912345678"):
        assert personal not in str(result.rejects[0])


@pytest.mark.parametrize(("rule", "line", "key", "detail"), PETITION_RULE_CASES)
def test_a_petition_line_breaking_one_rule_is_quarantined_under_it(rule: str, line: str, key: str, detail: str) -> None:
    result = read_petition_csv(_export(PETITION, line), name="x.csv")
    assert [record["ma_phan_anh"] for record in result.records] == ["PA-0001"]
    suffix = f" (ma_phan_anh {key})" if key else ""
    assert result.rejects == [RuleFailure(rule, f"petition x.csv row 3{suffix}", detail)]


def test_a_line_breaking_several_rules_is_one_failure_under_its_first_rule_with_every_problem() -> None:
    lines = [
        _petition({"ngay_nhan": "2026-07-01", "hai_long": "2"}),  # date, then satisfaction
        _petition({"ma_phan_anh": "PA-0001", "han_tra_loi": "x", "ngay_tra_loi": "y"}),  # two dates, then duplicate
        _petition({"ma_phan_anh": "PA-0003", "han_tra_loi": "x", "ngay_tra_loi": "y"}),  # one rule twice
    ]
    result = read_petition_csv(_export(PETITION, *lines), name="x.csv")
    assert [record["ma_phan_anh"] for record in result.records] == ["PA-0001"]
    assert result.rejects == [
        RuleFailure(
            "petition.date_invalid",
            "petition x.csv row 3 (ma_phan_anh PA-0002)",
            "ngay_nhan: not a date in dd/mm/yyyy form: '2026-07-01'; hai_long must be 1, 0 or empty, got '2' "
            "(also: petition.satisfied_invalid)",
        ),
        RuleFailure(
            "petition.date_invalid",
            "petition x.csv row 4 (ma_phan_anh PA-0001)",
            "han_tra_loi: not a date in dd/mm/yyyy form: 'x'; ngay_tra_loi: not a date in dd/mm/yyyy form: 'y'; "
            "duplicate ma_phan_anh (first at row 2) (also: petition.duplicate_code)",
        ),
        RuleFailure(
            "petition.date_invalid",
            "petition x.csv row 5 (ma_phan_anh PA-0003)",
            "han_tra_loi: not a date in dd/mm/yyyy form: 'x'; ngay_tra_loi: not a date in dd/mm/yyyy form: 'y'",
        ),
    ]
    # Rows read are records plus rejects, as the file sources count them.
    assert len(result.records) + len(result.rejects) == 4
    dossier = _dossier({"ma_donvi": "", "hinhthuc_nop": "9", "trang_thai": "", "co_phi": "x", "tt_truc_tuyen": "y"})
    [failure] = read_commune_csv(_export(DOSSIER, dossier), name="x.csv").rejects
    assert failure == RuleFailure(
        "commune.agency_missing",
        "commune x.csv row 3 (ma_hoso H99.01.02-260701-0002)",
        "missing ma_donvi; hinhthuc_nop '9' is not one of [1, 2, 3]; missing trang_thai; co_phi must be 0, 1 or "
        "empty, got 'x'; tt_truc_tuyen must be 0, 1 or empty, got 'y' "
        "(also: commune.channel_unknown, commune.status_missing, commune.flag_invalid)",
    )


def test_the_rejected_rows_limit_counts_rows_not_problems(tmp_path: Path) -> None:
    # Three rejected rows of two problems each (six problems) are within a limit of three rows.
    bad = [_petition({"ma_phan_anh": f"PA-1{n}", "ngay_nhan": "x", "hai_long": "2"}) for n in range(4)]
    path = tmp_path / "pa.csv"
    path.write_bytes(_export(PETITION, *bad[:3], _petition({"ma_phan_anh": "PA-0009"})))
    result = read_petition_csv(path, limits=FileLimits(max_rejected_rows=3))
    assert not result.refused_whole
    assert [record["ma_phan_anh"] for record in result.records] == ["PA-0001", "PA-0009"]
    assert [failure.rule for failure in result.rejects] == ["petition.date_invalid"] * 3
    # A fourth rejected row is past it: the file is refused whole, under the same whole-file rule as before.
    path.write_bytes(_export(PETITION, *bad, _petition({"ma_phan_anh": "PA-0009"})))
    result = read_petition_csv(path, limits=FileLimits(max_rejected_rows=3))
    assert result.refused_whole and result.records == []
    [failure] = result.rejects
    assert (failure.rule, failure.record) == ("petition.rejects", "petition pa.csv (whole file)")
    assert failure.detail.startswith(
        "more than 3 rows rejected (the first: petition pa.csv row 3 (ma_phan_anh PA-10): ngay_nhan: not a date"
    )
    # Dossiers alike: wrong field counts are rows too.
    lines = [_dossier({"ma_hoso": f"H-{n}"}, -2) for n in range(3)]
    commune = tmp_path / "xa.csv"
    commune.write_bytes(_export(DOSSIER, *lines[:2], _dossier({})))
    result = read_commune_csv(commune, limits=FileLimits(max_rejected_rows=2))
    assert [failure.rule for failure in result.rejects] == ["commune.field_count"] * 2 and len(result.records) == 2
    commune.write_bytes(_export(DOSSIER, *lines, _dossier({})))
    result = read_commune_csv(commune, limits=FileLimits(max_rejected_rows=2))
    assert [failure.rule for failure in result.rejects] == ["commune.rejects"]
    # The rows over the limit may be the file's last ones: it is refused all the same.
    path.write_bytes(_export(PETITION, *bad))
    assert read_petition_csv(path, limits=FileLimits(max_rejected_rows=3)).refused_whole
    commune.write_bytes(_export(DOSSIER, _dossier({}), *lines))
    assert read_commune_csv(commune, limits=FileLimits(max_rejected_rows=2)).refused_whole


def test_a_rejected_row_keeps_its_code_for_reconciliation() -> None:
    dossier = _dossier({"trang_thai": "7"})
    [failure] = read_commune_csv(_export(DOSSIER, dossier), name="x.csv").rejects
    assert failure.rule == "commune.status_unknown" and failure.key == "H99.01.02-260701-0002"
    [short] = read_commune_csv(_export(DOSSIER, _dossier({}, -2)), name="x.csv").rejects
    assert short.rule == "commune.field_count" and short.key is None
