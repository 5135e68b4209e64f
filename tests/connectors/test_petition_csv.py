"""The petition export: either delimiter, dates with or without the hour, rejects with reasons."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from baocao.connectors.petition_csv import read_petition_csv
from baocao.core.vietnamese import encode_text
from baocao.simulators.files import petition_csv, petitions, write_petition_csv


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
