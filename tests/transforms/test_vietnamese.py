"""Vietnamese numbers, dates and text encodings: examples from the sources plus property tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baocao.core import vietnamese
from baocao.core.vietnamese import (
    TCVN3_TABLE,
    VIETNAMESE_LETTERS,
    UndecodableTextError,
    decode_text,
    encode_text,
    format_date,
    format_datetime,
    format_number,
    is_vietnamese_syllable,
    mojibake_reason,
    parse_date,
    parse_datetime,
    parse_number,
)

# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("491.498", Decimal(491498)),
        ("475.158", Decimal(475158)),
        ("302,531", Decimal("302.531")),
        ("98,96 %", Decimal("98.96")),
        ("98,96%", Decimal("98.96")),
        ("465", Decimal(465)),
        ("465,00", Decimal("465.00")),
        ("1.000.000,5", Decimal("1000000.5")),
        (" 0,5 ", Decimal("0.5")),
        ("-12,5", Decimal("-12.5")),
        (302.531, Decimal("302.531")),
        (120.10000000000001, Decimal("120.1")),
        (465.0, Decimal(465)),
        (60, Decimal(60)),
        (Decimal("1.5"), Decimal("1.5")),
    ],
)
def test_parse_number_reads_vietnamese_formats(text: str | float, expected: Decimal) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "abc", "60.5", "1,234.5", "1.00", "12.3456", ",5", "1,2,3", "--1"])
def test_parse_number_refuses_other_formats_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a number") as caught:
        parse_number(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), Decimal("NaN")])
def test_parse_number_refuses_non_numbers(value: object) -> None:
    with pytest.raises(ValueError, match="not a number"):
        parse_number(value)  # type: ignore[arg-type]


def test_format_number_writes_the_vietnamese_way() -> None:
    assert format_number(491498) == "491.498"
    assert format_number(Decimal("302.531")) == "302,531"
    assert format_number(Decimal("98.956"), places=2) == "98,96"
    assert format_number(Decimal("-1234.5")) == "-1.234,5"
    assert format_number(0) == "0"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=3, allow_nan=False, allow_infinity=False))
def test_number_formatting_round_trips(value: Decimal) -> None:
    assert parse_number(format_number(value)) == value


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integer_formatting_round_trips(value: int) -> None:
    assert parse_number(format_number(value)) == value


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_spreadsheet_floats_read_as_their_decimal(value: Decimal) -> None:
    assert parse_number(float(value)) == value


# ---------------------------------------------------------------- dates


def test_dates_and_times() -> None:
    assert parse_date("15/12/2018") == date(2018, 12, 15)
    assert parse_date("5/1/2019") == date(2019, 1, 5)
    assert parse_datetime("14/12/2019 23:59") == datetime(2019, 12, 14, 23, 59)
    assert parse_datetime("01/02/2020 07:05:09") == datetime(2020, 2, 1, 7, 5, 9)


@pytest.mark.parametrize("text", ["2019-12-14", "31/02/2019", "14/12/19", "", "14/12/2019 25:00"])
def test_bad_dates_are_refused_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_datetime(text) if ":" in text else parse_date(text)
    assert repr(text) in str(caught.value)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_date_formatting_round_trips(value: date) -> None:
    assert parse_date(format_date(value)) == value


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)))
def test_datetime_formatting_round_trips_to_the_minute(value: datetime) -> None:
    assert parse_datetime(format_datetime(value)) == value.replace(second=0, microsecond=0)


# ---------------------------------------------------------------- the TCVN3 table


def test_tcvn3_table_covers_every_vietnamese_letter_once() -> None:
    letters = {char for char in TCVN3_TABLE.values() if char in VIETNAMESE_LETTERS}
    assert len(VIETNAMESE_LETTERS) == 134
    assert letters == VIETNAMESE_LETTERS
    assert len(TCVN3_TABLE) == len(set(TCVN3_TABLE.values()))


def test_tcvn3_matches_known_abc_codes() -> None:
    # Well-known ABC spellings (ư is 0xAD, a soft hyphen in Latin-1): "Sở Tư pháp" is "Së T­ ph¸p".
    assert encode_text("Sở Tư pháp", "tcvn3") == "Së T\u00ad ph¸p".encode("latin-1")
    assert encode_text("Bảo Thắng", "tcvn3") == "B¶o Th¾ng".encode("latin-1")
    assert decode_text("M\u00adêng Kh\u00ad¬ng B¸t X¸t".encode("latin-1")).text == "Mường Khương Bát Xát"


@pytest.mark.skipif(shutil.which("iconv") is None, reason="iconv not installed")
def test_tcvn3_table_agrees_with_glibc_iconv() -> None:
    letters = "".join(sorted(VIETNAMESE_LETTERS))
    result = subprocess.run(
        ["iconv", "-f", "UTF-8", "-t", "TCVN5712-1"], input=letters.encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("iconv has no TCVN5712-1")
    assert result.stdout == encode_text(letters, "tcvn3")


# ---------------------------------------------------------------- decoding examples

SAMPLE = "Sở Tư pháp;UBND xã Tà Nung;Giải quyết khiếu nại, tố cáo;HUYỆN ĐỨC TRỌNG;Nguyễn Văn Ánh;Đắk Lắk\n"


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1258", "cp1258"), ("tcvn3", "tcvn3")],
)
def test_each_supported_encoding_is_recognised(encoding: str, detected: str) -> None:
    decoded = decode_text(encode_text(SAMPLE, encoding))
    assert decoded.text == SAMPLE
    assert decoded.encoding == detected


def test_utf16_with_bom_and_decomposed_utf8_come_out_nfc() -> None:
    assert decode_text(SAMPLE.encode("utf-16")).text == SAMPLE
    decomposed = unicodedata.normalize("NFD", SAMPLE).encode("utf-8")
    assert decode_text(decomposed).text == SAMPLE


def test_windows_1258_decodes_to_nfc_not_decomposed_text() -> None:
    data = encode_text("Lâm Đồng Lạc Dương", "cp1258")
    assert b"\xf4\xcc" in data  # ồ is written as ô plus a combining grave accent
    text = decode_text(data).text
    assert text == unicodedata.normalize("NFC", text) == "Lâm Đồng Lạc Dương"


def test_abc_capitals_font_words_come_back_in_capitals() -> None:
    # In .VnTimeH the capitals with tone marks use the small letters' codes.
    data = encode_text("UBND HUYệN ĐứC TRọNG, Xã TÀ NUNG", "tcvn3")
    assert decode_text(data).text == "UBND HUYỆN ĐỨC TRỌNG, Xã TÀ NUNG"


def test_vni_is_refused_as_vni() -> None:
    with pytest.raises(UndecodableTextError, match="looks like VNI") as caught:
        decode_text(encode_text(SAMPLE, "vni"))
    assert caught.value.best_guess == "vni"


def test_mixed_utf8_and_windows_1258_is_refused() -> None:
    data = SAMPLE.encode("utf-8") + encode_text(SAMPLE, "cp1258")
    with pytest.raises(UndecodableTextError, match="mixes UTF-8"):
        decode_text(data)


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(UndecodableTextError, match="invalid UTF-8 and not a known 8-bit"):
        decode_text(bytes(range(0x80, 0x100)) * 4)


def test_bom_with_invalid_utf8_is_refused() -> None:
    with pytest.raises(UndecodableTextError, match="byte-order mark"):
        decode_text(b"\xef\xbb\xbfS\xeb T\xad ph\xb8p")


@pytest.mark.parametrize(
    ("garbled", "why"),
    [
        (SAMPLE.encode("utf-8").decode("cp1252", errors="replace"), "Windows-1252|U\\+FFFD"),
        (SAMPLE.encode("utf-8").decode("latin-1"), "C1 control"),
        (encode_text(SAMPLE, "tcvn3").decode("latin-1"), "Latin-1|C1 control"),
        (encode_text(SAMPLE.lower(), "tcvn3").decode("latin-1"), "Latin-1"),
        (encode_text(SAMPLE, "vni").decode("cp1252"), "VNI"),
    ],
)
def test_text_garbled_before_export_is_refused_even_as_valid_utf8(garbled: str, why: str) -> None:
    with pytest.raises(UndecodableTextError, match=why):
        decode_text(garbled.encode("utf-8"))


def test_ambiguous_short_text_is_refused_not_guessed() -> None:
    # "tôi" in Windows-1258 is also "tụi" in TCVN3: one word cannot tell them apart.
    with pytest.raises(UndecodableTextError, match="ambiguous"):
        decode_text("tôi".encode("cp1258"))


def test_legitimate_symbols_are_not_mojibake() -> None:
    for text in ("Diện tích 120 m²", "Nhiệt độ 25°C", "“UBND XÃ” – 2019…", "Müller François"):
        assert mojibake_reason(text) is None, text


def test_syllable_rules() -> None:
    for word in ("nghiêng", "Người", "quốc", "giữ", "khuya", "hoà", "hòa", "thuở", "Đắk", "ĐƯỢC", "HUYỆN"):
        assert is_vietnamese_syllable(word), word
    for word in ("hỔ", "ếN", "HUYệN", "maè", "tụũ", "cảc", "Sôû", "phaùp", "aũ", "Tö"):
        assert not is_vietnamese_syllable(word), word


# ---------------------------------------------------------------- property tests

_ONSETS = ["", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh", "ph"]
_ONSETS += ["qu", "r", "s", "t", "th", "tr", "v", "x"]
# Rhymes as (nucleus, index of the vowel carrying the tone, coda).
_RHYMES = [
    ("a", 0, ""), ("a", 0, "ch"), ("ă", 0, "n"), ("â", 0, "t"), ("e", 0, "m"), ("ê", 0, "nh"), ("i", 0, ""),
    ("i", 0, "nh"), ("o", 0, "ng"), ("ô", 0, "c"), ("ơ", 0, "n"), ("u", 0, "p"), ("ư", 0, "ng"), ("y", 0, ""),
    ("ai", 0, ""), ("ao", 0, ""),
    ("au", 0, ""), ("ay", 0, ""), ("âu", 0, ""), ("ây", 0, ""), ("eo", 0, ""), ("êu", 0, ""), ("ia", 0, ""),
    ("iê", 1, "n"), ("iu", 0, ""), ("oa", 1, "n"), ("oe", 0, ""), ("oi", 0, ""), ("ôi", 0, ""), ("ơi", 0, ""),
    ("ua", 0, ""), ("uâ", 1, "n"), ("uê", 1, ""), ("ui", 0, ""), ("uô", 1, "ng"), ("uy", 1, "nh"), ("ưa", 0, ""),
    ("ươ", 1, "c"), ("ưu", 0, ""), ("yê", 1, "n"), ("iêu", 1, ""), ("oai", 1, ""), ("uôi", 1, ""), ("uyê", 2, "t"),
    ("ươi", 1, ""), ("ươu", 1, ""), ("yêu", 1, ""), ("oay", 1, ""),
]  # fmt: skip
_TONE_MARKS = ["", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"]


@st.composite
def syllables(draw: st.DrawFn, marked: bool = False) -> str:
    """A well-formed syllable; `marked` ones have a tone or a vowel mark (a non-ASCII letter)."""
    onset = draw(st.sampled_from(_ONSETS))
    nucleus, carrier, coda = draw(st.sampled_from(_RHYMES))
    stop = coda in ("c", "ch", "p", "t")
    tones = ["\u0301", "\u0323"] if stop else _TONE_MARKS
    if marked and nucleus.isascii() and onset != "đ":
        tones = [tone for tone in tones if tone]
    tone = draw(st.sampled_from(tones))
    if onset in ("gi", "qu") and nucleus[0] in "iuy":
        onset = {"gi": "g", "qu": "c"}[onset]
    front = nucleus[0] in "eêiy"
    # Spelling: k, gh, ngh before e, ê, i, y; c, g, ng elsewhere.
    onset = {"c": "k", "g": "gh", "ng": "ngh"}.get(onset, onset) if front else onset
    onset = {"k": "c", "gh": "g", "ngh": "ng"}.get(onset, onset) if not front else onset
    vowels = unicodedata.normalize("NFD", nucleus)
    bases = [index for index, char in enumerate(vowels) if not unicodedata.combining(char)]
    position = bases[carrier] + 1
    while position < len(vowels) and unicodedata.combining(vowels[position]):
        position += 1
    word = unicodedata.normalize("NFC", onset + vowels[:position] + tone + vowels[position:] + coda)
    case = draw(st.sampled_from(["lower", "lower", "lower", "title", "upper"]))
    return word.title() if case == "title" else word.upper() if case == "upper" else word


@st.composite
def vietnamese_texts(draw: st.DrawFn, min_marked: int = 12) -> str:
    """Text as in the sources: Vietnamese words (at least `min_marked` different ones with diacritics), some codes."""
    words = draw(st.lists(syllables(marked=True), min_size=min_marked, max_size=min_marked + 20, unique=True))
    words += draw(st.lists(syllables(), max_size=15))
    words += draw(st.lists(st.sampled_from(["UBND", "2019", "H99.01", "000.00.01.H99", "(", ")", "-"]), max_size=4))
    words = draw(st.permutations(words))
    separators = draw(st.lists(st.sampled_from([" ", " ", " ", ", ", ";", "\n"]), min_size=len(words)))
    return "".join(piece + separator for piece, separator in zip(words, separators, strict=False)).strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vietnamese_texts(), st.sampled_from(["utf-8", "utf-8-sig", "cp1258", "tcvn3"]))
def test_encode_then_decode_gives_back_the_nfc_text(text: str, encoding: str) -> None:
    decoded = decode_text(encode_text(text, encoding))
    assert decoded.text == unicodedata.normalize("NFC", text)
    assert decoded.encoding == encoding


@settings(max_examples=300, deadline=None)
@given(vietnamese_texts(min_marked=1), st.sampled_from(["cp1258", "tcvn3"]))
def test_short_text_decodes_right_or_not_at_all(text: str, encoding: str) -> None:
    # A few words may not tell two code pages apart: then refusing is right, a wrong reading is not.
    try:
        decoded = decode_text(encode_text(text, encoding))
    except UndecodableTextError as refused:
        assert "ambiguous" in refused.reason
        return
    assert decoded.text == text


@settings(max_examples=200, deadline=None)
@given(vietnamese_texts(min_marked=1))
def test_vni_never_passes_as_another_encoding(text: str) -> None:
    with pytest.raises(UndecodableTextError):
        decode_text(encode_text(text, "vni"))


# Sequences that only garbled Vietnamese produces.
MOJIBAKE = [
    "á»",
    "áº",
    "Ã¡",
    "Ã©",
    "Ã³",
    "Ã²",
    "Æ°",
    "Æ¡",
    "Ä‘",
    "Äƒ",
    "â€™",
    "\ufffd",
    "T\u00adi",
    "ph¸p",
    "c¸c",
    "Tµ",
]


def _assert_no_mojibake(text: str) -> None:
    assert not any(sequence in text for sequence in MOJIBAKE)
    assert not any("\u0080" <= char <= "\u009f" for char in text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_returns_mojibake_from_arbitrary_bytes(data: bytes) -> None:
    try:
        decoded = decode_text(data)
    except UndecodableTextError:
        return
    _assert_no_mojibake(decoded.text)


@settings(max_examples=300, deadline=None)
@given(vietnamese_texts(), st.sampled_from(["utf-8", "cp1258", "tcvn3", "vni"]), st.sampled_from(["cp1252", "latin-1"]))
def test_decode_never_returns_mojibake_from_text_garbled_once(text: str, encoding: str, wrong: str) -> None:
    garbled = encode_text(text, encoding).decode(wrong, errors="replace")
    for data in (garbled.encode("utf-8"), garbled.encode("utf-8-sig")):
        try:
            decoded = decode_text(data)
        except UndecodableTextError:
            continue
        _assert_no_mojibake(decoded.text)
        assert decoded.text == unicodedata.normalize("NFC", garbled) or decoded.text == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_decode_never_returns_mojibake_from_any_utf8_text(text: str) -> None:
    try:
        decoded = decode_text(text.encode("utf-8"))
    except UndecodableTextError:
        return
    _assert_no_mojibake(decoded.text)


_ABC_TEXT = st.text(
    alphabet=st.sampled_from(sorted(VIETNAMESE_LETTERS) + list("aAbBxXđĐ1_ -\n«»¡¿ðÐþ€•‘“”…–—\u00a0ß")), max_size=60
)


def _restored_word_by_word(text: str) -> str:
    """The rule as first written, one Python call per word: the reference for the regex-driven one."""

    def fix(match: re.Match[str]) -> str:
        word = match[0]
        capitals = sum(char.isupper() for char in word)
        if capitals >= 2 and all(char.isupper() for char in word if char.isascii()) and not word.isupper():
            return word.upper()
        return word

    return re.sub(r"[^\W\d_]+", fix, text)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(_ABC_TEXT)
def test_abc_capitals_are_restored_exactly_as_word_by_word(text: str) -> None:
    assert vietnamese._restore_abc_capitals(text) == _restored_word_by_word(text)
