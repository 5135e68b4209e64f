"""A commune's dossier export: every encoding, rejects by row without personal data, whole-file problems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from baocao.connectors.commune_csv import read_commune_csv
from baocao.connectors.tabular import FileLimits, SpreadsheetError
from baocao.core.vietnamese import encode_text
from baocao.simulators.files import commune_csv, commune_dossiers, write_commune_csv

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
