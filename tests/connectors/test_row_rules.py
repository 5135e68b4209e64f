"""The CSV row rules: each is broken alone by one line and quarantined under it; a line breaking several
is one failure; the rejected-rows limit counts rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from baocao.connectors.commune_csv import read_commune_csv
from baocao.connectors.petition_csv import read_petition_csv
from baocao.connectors.row_rules import CSV_FILE_RULES, CSV_ROW_RULES
from baocao.connectors.tabular import FileLimits
from baocao.core.errors import RuleFailure
from baocao.core.vietnamese import encode_text

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
