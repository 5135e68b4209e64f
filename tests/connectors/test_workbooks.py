"""The yearly workbooks: published figures read back, tolerant headers, rejects with reasons."""

from __future__ import annotations

import unicodedata
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from python_calamine import CalamineWorkbook

from baocao.connectors.row_rules import WORKBOOK_ROW_RULES
from baocao.connectors.tabular import FileLimits, SpreadsheetError, header_key
from baocao.connectors.workbooks import parse_level, read_egov_workbook, read_ict_workbook
from baocao.simulators.files import (
    DEPARTMENT_SHEET,
    DISTRICT_SHEET,
    LAM_DONG_2019_COMMUNES,
    LAM_DONG_2019_DEPARTMENTS,
    LAM_DONG_2019_DISTRICTS,
    IctScore,
    write_egov_workbook,
    write_ict_workbook,
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


def test_ict_scores_written_as_text_are_read_as_numbers(tmp_path: Path) -> None:
    block = {DISTRICT_SHEET: (IctScore("000.01.00.H99", "TP. Đà Lạt", *map(Decimal, ("50.5", "40", "302.531", "60"))),)}
    result = read_ict_workbook(write_ict_workbook(tmp_path / "one.xlsx", blocks=block))
    [record] = result.records
    assert (record["infrastructure"], record["applications"]) == (Decimal("50.5"), Decimal("302.531"))
