"""The bounds of every value a source sends (`baocao.core.bounds`), through `checked_record`: each poison
value becomes the rule it breaks, with a description that never holds the value, and never an exception."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from baocao.core.bounds import BOUNDS_RULES, Window, column_limit, printable, refused_character
from baocao.core.errors import ConfigurationError
from baocao.transforms.canonical import checked_record, procedure_failures

NOW = datetime(2026, 11, 15, 2, 0)
WINDOW = Window.around(NOW)
GOOD = {
    "code": "H99.01-261020-0001",
    "agency_code": "000.00.01.H99",
    "field_code": "LV-HOTICH",
    "field_name": "Hộ tịch\tcấp xã",
    "channel": "ONLINE",
    "status": "RESOLVED",
    "received_at": "2026-10-20T08:00:00+07:00",
    "due_at": "2026-10-25T10:00:00Z",
    "updated_at": "2026-10-24 08:00",
    "rating": 5,
}


def rules_of(record: object) -> set[tuple[str, str]]:
    checked = checked_record(record, {}, {}, WINDOW)
    assert checked.row is None, "a poison record has no row"
    return {(failure.rule, failure.field) for failure in checked.failures}


def test_a_sound_record_is_mapped_as_canonical_record_maps_it() -> None:
    checked = checked_record(GOOD, {}, {}, WINDOW)
    assert checked.failures == () and checked.row is not None
    assert checked.key == GOOD["code"]
    assert checked.row["received_at"] == datetime(2026, 10, 20, 8, 0)
    assert checked.row["due_at"] == datetime(2026, 10, 25, 17, 0)
    assert checked.row["field_name"] == "Hộ tịch\tcấp xã"  # a tab is ordinary whitespace in a name


@pytest.mark.parametrize(
    ("moment", "field"),
    [
        ("9999-12-31T23:59:59Z", "received_at"),  # moving it to UTC+7 overflowed: OverflowError before
        ("0001-01-01T00:00:00+08:00", "updated_at"),  # and so did this one
        ("1989-12-31T23:59:59", "due_at"),
        ("2036-11-16T00:00:00", "finished_at"),  # ten years and a day after the run
    ],
)
def test_dates_outside_the_window_are_out_of_range(moment: str, field: str) -> None:
    assert rules_of({**GOOD, field: moment}) == {("dossier.date_out_of_range", field)}


def test_the_window_ends_ten_years_after_the_run() -> None:
    assert WINDOW.earliest == datetime(1990, 1, 1) and WINDOW.latest == datetime(2036, 11, 15, 2, 0)
    assert WINDOW.holds(date(1990, 1, 1)) and not WINDOW.holds(date(1989, 12, 31))
    assert checked_record({**GOOD, "due_at": "2036-11-15T02:00:00"}, {}, {}, WINDOW).row is not None
    assert Window.around(datetime(2028, 2, 29)).latest == datetime(2038, 2, 28)


@pytest.mark.parametrize("moment", ["20/10/2026", "yesterday", "2026-13-01T00:00:00", 20261020.5])
def test_an_unreadable_date_is_invalid(moment: object) -> None:
    assert rules_of({**GOOD, "received_at": moment}) == {("dossier.date_invalid", "received_at")}


def test_text_longer_than_its_column_is_too_long_and_the_limit_comes_from_the_table() -> None:
    assert column_limit("dossiers", "field_name") == 500 and column_limit("dossiers", "code") == 100
    assert checked_record({**GOOD, "field_name": "x" * 500}, {}, {}, WINDOW).row is not None
    checked = checked_record({**GOOD, "field_name": "x" * (10 * 2**20)}, {}, {}, WINDOW)
    assert [(f.rule, f.field, f.value) for f in checked.failures] == [
        ("dossier.text_too_long", "field_name", "10485760 characters, the limit is 500")
    ]
    assert rules_of({**GOOD, "agency_code": "0" * 33}) == {("dossier.text_too_long", "agency_code")}


@pytest.mark.parametrize(
    ("code", "point"),
    [("AB\x00", "U+0000"), ("AB\x1b[31m", "U+001B"), ("AB\nC", "U+000A"), ("AB\u202eC", "U+202E"), ("A\tB", "U+0009")],
)
def test_a_code_holds_no_control_character_and_its_key_is_escaped(code: str, point: str) -> None:
    checked = checked_record({**GOOD, "code": code}, {}, {}, WINDOW)
    assert checked.row is None
    [failure] = checked.failures
    assert (failure.rule, failure.field) == ("dossier.control_character", "code")
    assert failure.value == f"{point} at character {code.index(chr(int(point[2:], 16))) + 1}"
    assert checked.key is not None and checked.key.isprintable() and checked.key.startswith("A")


@pytest.mark.parametrize("name", ["Hộ\x00tịch", "Hộ tịch\u202e", "Hộ\x1btịch", "Hộ\u2028tịch", "Hộ\ud800tịch"])
def test_a_name_holds_ordinary_whitespace_only(name: str) -> None:
    assert rules_of({**GOOD, "field_name": name}) == {("dossier.control_character", "field_name")}
    assert checked_record({**GOOD, "field_name": "Hộ\ntịch\r\n"}, {}, {}, WINDOW).row is not None


@pytest.mark.parametrize("record", [[GOOD], "H99.01", 7, None])
def test_a_record_that_is_not_a_mapping_has_an_unknown_shape(record: object) -> None:
    checked = checked_record(record, {}, {}, WINDOW)
    assert checked.row is None and checked.key is None
    assert [(f.rule, f.field) for f in checked.failures] == [("dossier.unknown_shape", "record")]


@pytest.mark.parametrize(("field", "value"), [("code", ["a", "b"]), ("field_name", {"vi": "Hộ tịch"}), ("due_at", [1])])
def test_a_list_or_object_where_a_value_belongs_has_an_unknown_shape(field: str, value: object) -> None:
    assert rules_of({**GOOD, field: value}) == {("dossier.unknown_shape", field)}


@pytest.mark.parametrize("rating", [float("inf"), 2**31, -(2**40)])
def test_a_number_its_column_cannot_hold_is_out_of_range(rating: object) -> None:
    assert rules_of({**GOOD, "rating": rating}) == {("dossier.number_out_of_range", "rating")}


def test_failures_describe_values_without_holding_them() -> None:
    secret = "Nguyễn Văn A 079123456789"
    checked = checked_record({**GOOD, "field_name": secret * 40, "received_at": secret}, {}, {}, WINDOW)
    assert {f.rule for f in checked.failures} == {"dossier.text_too_long", "dossier.date_invalid"}
    assert all("Nguyễn" not in str(f) and "0791" not in str(f) for f in checked.failures)


def test_every_failure_of_a_record_is_listed() -> None:
    record = {**GOOD, "code": "X\x00", "received_at": "9999-12-31T23:59:59Z", "field_name": "y" * 501}
    assert rules_of(record) == {
        ("dossier.control_character", "code"),
        ("dossier.date_out_of_range", "received_at"),
        ("dossier.text_too_long", "field_name"),
    }


def test_a_mapping_to_personal_data_is_still_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="personal"):
        checked_record(GOOD, {"field_name": "applicant.name"}, {}, WINDOW)


def test_catalogue_entries_are_bounded_by_the_procedures_table() -> None:
    entry = {"code": "1.000001", "agency_code": "000.00.01.H99", "name": "Đăng ký khai sinh", "field_code": "LV"}
    assert procedure_failures(entry) == []
    assert {f.rule for f in procedure_failures({**entry, "name": "n" * 1001})} == {"catalogue.text_too_long"}
    assert {f.rule for f in procedure_failures({**entry, "code": "1\u202e0"})} == {"catalogue.control_character"}
    assert {f.rule for f in procedure_failures({**entry, "field_code": ["LV"]})} == {"catalogue.unknown_shape"}
    assert {f.rule for f in procedure_failures("entry")} == {"catalogue.unknown_shape"}


def test_printable_escapes_and_cuts() -> None:
    assert printable("AB\x00\x1b\u202e") == "AB\\x00\\x1b\\u202e"
    assert printable("x" * 100, 10) == "x" * 10 + "…(+90 characters)"
    assert printable("Hồ sơ 01") == "Hồ sơ 01"
    assert refused_character("Hồ sơ 01", code=True) is None


def test_every_family_has_every_rule() -> None:
    for family in ("dossier", "petition", "catalogue"):
        for breach in ("date_out_of_range", "date_invalid", "text_too_long", "control_character", "unknown_shape"):
            assert f"{family}.{breach}" in BOUNDS_RULES
