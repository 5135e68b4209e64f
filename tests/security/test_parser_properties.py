"""Property tests on the Vietnamese number, date and encoding parsers, alone and through the readers
that use them (`core.vietnamese`, `connectors.workbooks`, `connectors.petition_csv`).

The rule in every case: a value is read right or refused with the parser's clear error, never read
as another value (a number in another locale's reading, a day taken for a month, a date rolled over
into the next month, text in the wrong code page). Hypothesis runs derandomized, without an example
database, with a moderate number of examples each.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baocao.connectors.petition_csv import read_petition_csv
from baocao.connectors.workbooks import read_ict_workbook
from baocao.core.vietnamese import encode_text, format_number, mojibake_reason, parse_date, parse_datetime, parse_number
from tests.security import figures
from tests.security.hostile import ICT_HEADER, sheet_xml, write_workbook
from tests.transforms.test_vietnamese import vietnamese_texts

PROPERTIES = settings(
    max_examples=200, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FEW = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PETITION_HEADER = ["ma_phan_anh", "ma_donvi", "ngay_nhan", "han_tra_loi", "ngay_tra_loi", "hai_long"]

# Per test: examples read and examples refused, printed when the module is done.
OUTCOMES: dict[str, Counter[str]] = defaultdict(Counter)


@pytest.fixture(scope="module", autouse=True)
def _print_outcomes() -> Iterator[None]:
    yield
    for test, counts in OUTCOMES.items():
        total = sum(counts.values())
        figures.record(test, f"{total} examples: {counts['read']} read right, {counts['refused']} refused")


decimals = st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False, allow_infinity=False)
padding = st.sampled_from(["", " ", "\u00a0", "  ", "\t"])


# ---------------------------------------------------------------- numbers


@PROPERTIES
@given(value=decimals, places=st.integers(0, 4), before=padding, after=padding, percent=st.booleans())
def test_a_number_written_the_vietnamese_way_reads_back_exactly(
    value: Decimal, places: int, before: str, after: str, percent: bool
) -> None:
    value = value.quantize(Decimal(1).scaleb(-places))
    text = before + format_number(value, places) + (" %" if percent else "") + after
    assert parse_number(text) == value
    OUTCOMES["numbers round-trip"]["read"] += 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text).lstrip("0")


@PROPERTIES
@given(text=st.text(alphabet=st.sampled_from("0123456789.,-+\u2212% \u00a0a"), max_size=16))
def test_garbage_is_refused_or_read_as_the_digits_it_shows(text: str) -> None:
    """Whatever the text, a number comes back only when it is the text's own digits in Vietnamese
    form (dots between groups of three before the one comma), else a ValueError quoting the text."""
    try:
        value = parse_number(text)
    except ValueError as refused:
        assert repr(text) in str(refused) and "Vietnamese format" in str(refused)
        OUTCOMES["number garbage"]["refused"] += 1
        return
    OUTCOMES["number garbage"]["read"] += 1
    shown = text.replace("%", "").strip(" \u00a0")
    assert _digits(format(abs(value), "f")) == _digits(shown)
    assert (value < 0) == (shown[:1] in ("-", "\u2212") and _digits(shown) != "")
    whole, _, fraction = shown.lstrip("+-\u2212").partition(",")
    assert all(len(group) == 3 for group in whole.split(".")[1:]) and "." not in fraction and "," not in fraction


@PROPERTIES
@given(
    value=st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    places=st.sampled_from([1, 2, 4]),
)
def test_another_locales_decimal_point_is_refused_not_misread(value: Decimal, places: int) -> None:
    """`1,234.5` or `60.50` (en-US) is refused; reading it either way could publish a wrong figure.
    (Three decimals, `60.500`, is the Vietnamese sixty thousand five hundred: that ambiguity is the
    format's own, which is why score cells with a '.' are refused by the workbook reader.)"""
    text = f"{value:,.{places}f}"
    with pytest.raises(ValueError, match="not a number in Vietnamese format"):
        parse_number(text)
    OUTCOMES["other locale's decimals"]["refused"] += 1


@FEW
@given(scores=st.lists(st.decimals(min_value=0, max_value=999, places=3, allow_nan=False), min_size=4, max_size=40))
def test_scores_typed_as_vietnamese_text_in_a_workbook_are_read_exactly(tmp_path: Path, scores: list[Decimal]) -> None:
    rows = []
    for number, score in enumerate(scores, start=2):
        cells = [f'<c r="A{number}"><v>{number - 1}</v></c>']
        cells.append(f'<c r="B{number}" t="inlineStr"><is><t>000.00.{number:02d}.H99</t></is></c>')
        cells.append(f'<c r="C{number}" t="inlineStr"><is><t>Sở số {number}</t></is></c>')
        for column in "DEFG":  # text as a department types it, `302,531`
            cells.append(f'<c r="{column}{number}" t="inlineStr"><is><t>{format_number(score)}</t></is></c>')
        rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    result = read_ict_workbook(write_workbook(tmp_path / "ict.xlsx", sheet=sheet_xml("".join(rows))))
    assert result.rejects == [] and len(ICT_HEADER) == 8
    assert [record["infrastructure"] for record in result.records] == scores
    assert all(record["policy"] == record["applications"] == record["infrastructure"] for record in result.records)
    OUTCOMES["workbooks of scores typed as text"]["read"] += 1


# ---------------------------------------------------------------- dates


@PROPERTIES
@given(day=st.integers(0, 40), month=st.integers(0, 15), year=st.integers(1000, 9999), padded=st.booleans())
def test_a_day_is_never_read_as_a_month_nor_rolled_over(day: int, month: int, year: int, padded: bool) -> None:
    text = f"{day:02d}/{month:02d}/{year}" if padded else f"{day}/{month}/{year}"
    try:
        expected = date(year, month, day)
    except ValueError:
        with pytest.raises(ValueError, match=re.escape(repr(text))):
            parse_date(text)
        OUTCOMES["dates"]["refused"] += 1
        return
    assert parse_date(text) == expected
    OUTCOMES["dates"]["read"] += 1


@PROPERTIES
@given(
    moment=st.tuples(st.integers(1, 31), st.integers(1, 12), st.integers(1900, 2100)),
    hour=st.integers(0, 30),
    minute=st.integers(0, 70),
    second=st.one_of(st.none(), st.integers(0, 70)),
)
def test_a_time_is_read_exactly_or_refused(
    moment: tuple[int, int, int], hour: int, minute: int, second: int | None
) -> None:
    day, month, year = moment
    text = f"{day:02d}/{month:02d}/{year} {hour:02d}:{minute:02d}" + (f":{second:02d}" if second is not None else "")
    try:
        expected = datetime(year, month, day, hour, minute, second or 0)
    except ValueError:
        with pytest.raises(ValueError, match=re.escape(repr(text))):
            parse_datetime(text)
        OUTCOMES["times"]["refused"] += 1
        return
    assert parse_datetime(text) == expected
    OUTCOMES["times"]["read"] += 1


@PROPERTIES
@given(
    text=st.one_of(
        st.text(alphabet=st.sampled_from("0123456789/ :-.T"), max_size=20),
        st.from_regex(r"\A ?[0-9]{1,3}/[0-9]{1,3}/[0-9]{3,5} ?\Z"),
    )
)
def test_any_text_is_a_date_it_spells_or_refused(text: str) -> None:
    try:
        value = parse_date(text)
    except ValueError as refused:
        assert repr(text) in str(refused)
        OUTCOMES["date garbage"]["refused"] += 1
        return
    day, month, year = (int(part) for part in text.strip().split("/"))
    assert value == date(year, month, day)
    OUTCOMES["date garbage"]["read"] += 1


# ---------------------------------------------------------------- encodings, through the CSV reader


def _petition_file(ma_donvi: str, encoding: str, received: date) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(PETITION_HEADER)
    writer.writerow(["PA-0001", ma_donvi, received.strftime("%d/%m/%Y"), "", "", "1"])
    return encode_text(buffer.getvalue(), encoding)


@settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    text=vietnamese_texts(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1258", "tcvn3"]),
    received=st.dates(date(2000, 1, 1), date(2030, 12, 31)),
)
def test_vietnamese_text_in_each_encoding_is_read_back_as_the_same_nfc_text(
    text: str, encoding: str, received: date
) -> None:
    result = read_petition_csv(_petition_file(text, encoding, received), name="pa.csv")
    assert not result.refused_whole, result.rejects
    [record] = result.records
    assert record["ma_donvi"] == unicodedata.normalize("NFC", text).strip()
    assert record["ngay_nhan"] == received and result.encoding == encoding
    OUTCOMES[f"Vietnamese text in CSV files ({encoding})"]["read"] += 1


@settings(
    max_examples=200, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(body=st.binary(max_size=400))
def test_random_bytes_are_read_as_clean_text_or_refused_never_stored_as_mojibake(body: bytes) -> None:
    data = ";".join(PETITION_HEADER).encode() + b"\r\nPA-1;" + body + b";01/02/2026;;;1\r\n"
    result = read_petition_csv(data, name="pa.csv")
    if result.refused_whole:
        [reason] = result.rejects
        assert reason.record == "petition pa.csv (whole file)"
        assert reason.rule in ("petition.encoding", "petition.format", "petition.header", "petition.size")
        OUTCOMES["random bytes in CSV files"]["refused"] += 1
        return
    OUTCOMES["random bytes in CSV files"]["read"] += 1
    for record in result.records:
        for value in record.values():
            if isinstance(value, str):
                assert mojibake_reason(value) is None, value
    for reject in result.rejects:
        assert mojibake_reason(reject.detail) is None
