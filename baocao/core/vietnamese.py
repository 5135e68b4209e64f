"""Text, numbers and dates as Vietnamese department systems write them, read into clean values.

Numbers use `.` for thousands and `,` for decimals (`491.498`, `302,531`, `98,96 %`); dates are
`dd/mm/yyyy` (naive local time, UTC+7). Files from old systems come in UTF-8, Windows-1258 or
TCVN3 (ABC); `decode_text` recognises them and returns NFC text, and refuses (never guesses)
when it cannot tell: VNI, mixed encodings, or text that was already garbled before export.

How `decode_text` decides, in order:

1. A UTF-16 byte-order mark means UTF-16. A UTF-8 byte-order mark means UTF-8, and the bytes must
   then be valid UTF-8.
2. Bytes that are valid UTF-8 are UTF-8 (multi-byte sequences are almost never valid by chance),
   unless they are pure ASCII plus the control bytes TCVN3 uses for capital letters, which go to
   step 3. The text is then checked for mojibake (step 4), and refused if re-reading it as 8-bit
   bytes (Windows-1252/Latin-1 back to bytes, then UTF-8, Windows-1258, TCVN3 or VNI) scores
   clearly better (`REREAD_MARGIN`) than the text itself: 8-bit text once decoded in the wrong code
   page and saved as UTF-8, whose bytes no longer reliably say which letters were meant.
3. Otherwise each 8-bit candidate (Windows-1258, TCVN3, and VNI for recognition only) decodes the
   bytes and is scored by the share of its words that are well-formed Vietnamese syllables (onset
   spelled as Vietnamese spells it, vowel nucleus, a final that fits the nucleus, at most one tone
   mark placed on the vowel that carries it, stop finals only with the sắc or nặng tone, no capital
   after a small letter) among words with non-ASCII letters; stray symbols, control characters,
   unattached combining marks and punctuation glued inside words count as failures. The best
   candidate is taken only if it scores at least `ACCEPT_SHARE` and beats the runner-up by `MARGIN`
   (or, within the margin, scores higher and has clearly more small letters, since a wrong code page
   turns small letters into capitals), and only if the whole text (not just the sample scored
   first) still scores at least `ACCEPT_SHARE`. Otherwise the text is refused as ambiguous (a few
   words of text may not tell the code pages apart) or as unknown. VNI winning means "looks like
   VNI": refused, no converter is shipped. Bytes that hold UTF-8 sequences of Vietnamese letters
   but are not valid UTF-8 are refused as mixed.
4. Whatever is returned is checked for typical mojibake sequences (UTF-8 read as Windows-1252,
   `á»`, `Ã¡`, `Æ°`; TCVN3 read as Latin-1, `ph¸p`; Windows-1258 read as Latin-1, `ð`; C1
   controls; U+FFFD). Any of them: refused. Messages name the tell-tale characters, never the text.

TCVN3 here is TCVN 5712:1993 in full (VN1), whose lower half of the 0xA0-0xFF area is the ABC (VN3)
font encoding; the capitals with tone marks sit in 0x80-0x9F and a few C0 positions. ABC fonts
wrote capitals with tone marks using the lower-case codes in a separate "H" font, so the case of
those letters is not in the bytes: a word whose ASCII letters are all capitals is read as a
capital word (`HUY` + `ệ` + `N` → `HUYỆN`); a single toned capital in such text comes out lower case.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from baocao.core.errors import FatalError


class VietnameseFormatError(FatalError, ValueError):
    """A value not written (or that cannot be written) the way Vietnamese department systems write it.

    A `ValueError` as well: readers catch it and turn it into a data-quality failure that names the
    record and the rule; one that escapes them stops the run (the same value fails the same way again).
    """


# ---------------------------------------------------------------- numbers

_VIETNAMESE_NUMBER = re.compile(r"(?P<sign>[-+\u2212]?)(?P<whole>\d{1,3}(?:\.\d{3})+|\d+)(?:,(?P<fraction>\d+))?")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def parse_number(value: str | int | float | Decimal) -> Decimal:
    """A number written the Vietnamese way (`491.498`, `302,531`, `98,96 %`) or given as a number.

    `.` only groups thousands in threes and `,` only separates decimals, so `60.5` or `1,234.5`
    (another locale's format) are refused rather than read one way or the other. Spreadsheet
    floats are read through their shortest decimal form (`302.531`, not its binary expansion).
    """
    if isinstance(value, bool):
        raise VietnameseFormatError(f"not a number: {value!r} (a true/false value)")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise VietnameseFormatError(f"not a number: {value!r}")
        # 15 significant digits is what a spreadsheet shows; it drops binary noise (120.10000000000001).
        return Decimal(format(value, ".15g"))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise VietnameseFormatError(f"not a number: {value!r}")
        return value
    if not isinstance(value, str):
        raise VietnameseFormatError(f"not a number: {value!r}")
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if text.endswith("%"):
        text = text[:-1].rstrip()
    match = _VIETNAMESE_NUMBER.fullmatch(text)
    if not match:
        raise VietnameseFormatError(
            f"not a number in Vietnamese format: {value!r} ('.' groups thousands in threes, ',' marks decimals)"
        )
    sign = "-" if match["sign"] in ("-", "\u2212") else ""
    digits = match["whole"].replace(".", "")
    fraction = f".{match['fraction']}" if match["fraction"] else ""
    try:
        return Decimal(f"{sign}{digits}{fraction}")
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise VietnameseFormatError(f"not a number in Vietnamese format: {value!r}") from None


def format_number(value: Decimal | int, places: int | None = None) -> str:
    """A number written the Vietnamese way: `491.498`, `302,531`; `places` fixes the decimals."""
    number = Decimal(value)
    if not number.is_finite():
        raise VietnameseFormatError(f"cannot format {value!r}")
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    text = f"{abs(number):f}"
    whole, _, fraction = text.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    sign = "-" if number < 0 and number != 0 else ""
    return sign + ".".join(groups) + (f",{fraction}" if fraction else "")


# ---------------------------------------------------------------- dates

_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DATETIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_date(text: str) -> date:
    """`dd/mm/yyyy` (one-digit day or month accepted) as a date."""
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise VietnameseFormatError(f"not a date in dd/mm/yyyy form: {text!r}")
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as problem:
        raise VietnameseFormatError(f"not a valid date: {text!r} ({problem})") from None


def parse_datetime(text: str) -> datetime:
    """`dd/mm/yyyy HH:MM` (seconds optional) as a naive local (UTC+7) time."""
    match = _DATETIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise VietnameseFormatError(f"not a time in dd/mm/yyyy HH:MM form: {text!r}")
    day, month, year, hour, minute = (int(part) for part in match.groups()[:5])
    second = int(match[6]) if match[6] else 0
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as problem:
        raise VietnameseFormatError(f"not a valid time: {text!r} ({problem})") from None


def format_date(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def format_datetime(value: datetime) -> str:
    return f"{format_date(value)} {value.hour:02d}:{value.minute:02d}"


# ---------------------------------------------------------------- the Vietnamese alphabet

_TONES = {"\u0300": "grave", "\u0301": "acute", "\u0303": "tilde", "\u0309": "hook", "\u0323": "dot"}
_QUALITY_MARKS = frozenset("\u0302\u0306\u031b")  # circumflex, breve, horn
_BASE_VOWELS = "aăâeêioôơuưy"
_BARE_LETTERS = frozenset("abcdeghiklmnopqrstuvxyăâđêôơư")


def _vietnamese_letters() -> frozenset[str]:
    letters = set("đĐ")
    for vowel in _BASE_VOWELS + _BASE_VOWELS.upper():
        for tone in ("", *_TONES):
            letters.add(unicodedata.normalize("NFC", unicodedata.normalize("NFD", vowel) + tone))
    return frozenset(letter for letter in letters if not letter.isascii())


# The 134 letters with diacritics (67 capitals, 67 small letters).
VIETNAMESE_LETTERS = _vietnamese_letters()

# ---------------------------------------------------------------- TCVN3 (TCVN 5712:1993)

# Byte → character for every byte that is not plain ASCII in TCVN 5712:1993 (VN1, a superset of
# the ABC/VN3 font encoding). 0xB0-0xB4 are combining tone marks (composed by NFC afterwards).
TCVN3_TABLE: dict[int, str] = {
    # capitals with tone marks kept in C0 positions (not used for control codes in VN1)
    0x01: "Ú", 0x02: "Ụ", 0x04: "Ừ", 0x05: "Ử", 0x06: "Ữ", 0x11: "Ứ", 0x12: "Ự", 0x13: "Ỳ",
    0x14: "Ỷ", 0x15: "Ỹ", 0x16: "Ý", 0x17: "Ỵ",
    # capitals with tone marks
    0x80: "À", 0x81: "Ả", 0x82: "Ã", 0x83: "Á", 0x84: "Ạ", 0x85: "Ặ", 0x86: "Ậ", 0x87: "È",
    0x88: "Ẻ", 0x89: "Ẽ", 0x8A: "É", 0x8B: "Ẹ", 0x8C: "Ệ", 0x8D: "Ì", 0x8E: "Ỉ", 0x8F: "Ĩ",
    0x90: "Í", 0x91: "Ị", 0x92: "Ò", 0x93: "Ỏ", 0x94: "Õ", 0x95: "Ó", 0x96: "Ọ", 0x97: "Ộ",
    0x98: "Ờ", 0x99: "Ở", 0x9A: "Ỡ", 0x9B: "Ớ", 0x9C: "Ợ", 0x9D: "Ù", 0x9E: "Ủ", 0x9F: "Ũ",
    # no-break space, then the letters with vowel marks and đ, capital and small
    0xA0: "\u00a0", 0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ", 0xAF: "Ằ",
    # combining grave, hook above, tilde, acute, dot below
    0xB0: "\u0300", 0xB1: "\u0309", 0xB2: "\u0303", 0xB3: "\u0301", 0xB4: "\u0323",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ", 0xBA: "Ẳ", 0xBB: "ằ", 0xBC: "ẳ",
    0xBD: "ẵ", 0xBE: "ắ", 0xBF: "Ẵ", 0xC0: "Ắ", 0xC1: "Ầ", 0xC2: "Ẩ", 0xC3: "Ẫ", 0xC4: "Ấ",
    0xC5: "Ề", 0xC6: "ặ", 0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ", 0xCC: "è",
    0xCD: "Ể", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ", 0xD2: "ề", 0xD3: "ể", 0xD4: "ễ",
    0xD5: "ế", 0xD6: "ệ", 0xD7: "ì", 0xD8: "ỉ", 0xD9: "Ễ", 0xDA: "Ế", 0xDB: "Ồ", 0xDC: "ĩ",
    0xDD: "í", 0xDE: "ị", 0xDF: "ò", 0xE0: "Ổ", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ", 0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ",
    0xED: "ớ", 0xEE: "ợ", 0xEF: "ù", 0xF0: "Ỗ", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự", 0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ",
    0xFD: "ý", 0xFE: "ỵ", 0xFF: "Ố",
}  # fmt: skip

_WORD = re.compile(r"[^\W\d_]+")
_TCVN3_DECODING = "".join(TCVN3_TABLE.get(byte, chr(byte)) for byte in range(256))
_TCVN3_ENCODING = {char: byte for byte, char in TCVN3_TABLE.items()}
_TCVN3_CAPITAL_CONTROLS = frozenset(byte for byte in TCVN3_TABLE if byte < 0x20)
_TCVN3_CONTROL_BYTES = bytes(sorted(_TCVN3_CAPITAL_CONTROLS))


def _decode_tcvn3(data: bytes) -> str:
    text, _ = codecs.charmap_decode(data, "strict", _TCVN3_DECODING)
    return unicodedata.normalize("NFC", text)


# Runs of letters without an ASCII small letter that end a word: with no letter before them, the
# only words `_restore_abc_capitals` may change. The regex engine finds them (a Python call per word
# took seconds on a big export); starting with the character class lets it skip ahead.
_WORD_END_WITHOUT_ASCII_SMALL = re.compile(r"[^\W\d_a-z]+(?![^\W\d_])")


def _restore_abc_capitals(text: str) -> str:
    """Words typed in an ABC "H" (capitals) font: their toned letters arrive in lower case."""

    def fix(match: re.Match[str]) -> str:
        word, start = match[0], match.start()
        if start and _WORD.match(text, start - 1):  # the tail of a word with small ASCII letters
            return word
        if not word.isupper() and sum(char.isupper() for char in word) >= 2:
            return word.upper()
        return word

    return _WORD_END_WITHOUT_ASCII_SMALL.sub(fix, text)


# ---------------------------------------------------------------- VNI (recognition only)

# VNI-Windows writes a letter as its ASCII base plus one mark byte (or one byte for ơ ư đ and the
# toned i). Shipped to recognise VNI files (and to write them in tests), never to import them.
_TONE_ORDER = ("", "grave", "acute", "hook", "tilde", "dot")
_VNI_TONE_BYTES = dict(zip(_TONE_ORDER, (b"", b"\xf8", b"\xf9", b"\xfb", b"\xf5", b"\xef"), strict=True))
_VNI_CIRCUMFLEX_BYTES = dict(zip(_TONE_ORDER, (b"\xe2", b"\xe0", b"\xe1", b"\xe5", b"\xe3", b"\xe4"), strict=True))
_VNI_BREVE_BYTES = dict(zip(_TONE_ORDER, (b"\xea", b"\xe8", b"\xe9", b"\xfa", b"\xfc", b"\xeb"), strict=True))
_VNI_I_BYTES = dict(zip(_TONE_ORDER[1:], (b"\xec", b"\xed", b"\xe6", b"\xf3", b"\xf2"), strict=True))
_VNI_LETTERS = (
    ("a", ""), ("a", "\u0306"), ("a", "\u0302"), ("e", ""), ("e", "\u0302"), ("i", ""),
    ("o", ""), ("o", "\u0302"), ("o", "\u031b"), ("u", ""), ("u", "\u031b"), ("y", ""),
)  # fmt: skip


def _vni_table() -> dict[str, bytes]:
    table: dict[str, bytes] = {"đ": b"\xf1", "Đ": b"\xd1"}
    tone_names = {"": "", **_TONES}
    for mark, tone in tone_names.items():
        for base, quality in _VNI_LETTERS:
            letter = unicodedata.normalize("NFC", base + quality + mark)
            if letter.isascii():
                continue
            if quality == "\u0302":
                small = base.encode() + _VNI_CIRCUMFLEX_BYTES[tone]
            elif quality == "\u0306":
                small = base.encode() + _VNI_BREVE_BYTES[tone]
            elif quality == "\u031b":
                small = (b"\xf4" if base == "o" else b"\xf6") + _VNI_TONE_BYTES[tone]
            elif base == "i":
                small = _VNI_I_BYTES[tone]
            else:
                small = base.encode() + _VNI_TONE_BYTES[tone]
            table[letter] = small
            # Capitals: the same mark bytes 0x20 lower (Ø for ø, Â for â, ...), base letter in capitals.
            table[letter.upper()] = bytes(byte - 0x20 if byte >= 0xC0 else byte for byte in small.upper())
    return table


_VNI_ENCODING = _vni_table()
_VNI_DECODING = {code.decode("latin-1"): letter for letter, code in _VNI_ENCODING.items()}
# Longest codes first; then any other high byte, which is a mark following no base letter.
_VNI_PATTERN = re.compile(
    "|".join(re.escape(code) for code in sorted(_VNI_DECODING, key=len, reverse=True)) + "|[\u0080-\u009f\u00a1-\u00ff]"
)


def _decode_vni(data: bytes) -> str:
    """VNI for recognition: a mark byte that follows no base letter is no letter (U+FFFD)."""
    text = _VNI_PATTERN.sub(lambda m: _VNI_DECODING.get(m[0], "\ufffd"), data.decode("latin-1"))
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------- encoders (simulators, tests)

ENCODINGS = ("utf-8", "utf-8-sig", "cp1258", "tcvn3", "vni")


def encode_text(text: str, encoding: str) -> bytes:
    """`text` in one of `ENCODINGS`, as the old systems write it (Windows-1258: precomposed where
    the code page has the letter, else base letter plus combining tone mark)."""
    text = unicodedata.normalize("NFC", text)
    if encoding in ("utf-8", "utf-8-sig"):
        return text.encode(encoding)
    out = bytearray()
    for char in text:
        out += _encode_char(char, encoding)
    return bytes(out)


def _encode_char(char: str, encoding: str) -> bytes:
    if encoding == "cp1258":
        try:
            return char.encode("cp1258")
        except UnicodeEncodeError:
            base, tone = _split_tone(char)
            if tone is None:
                raise VietnameseFormatError(f"{char!r} cannot be written in Windows-1258") from None
            return base.encode("cp1258") + tone.encode("cp1258")
    if encoding == "tcvn3":
        if char in _TCVN3_ENCODING:
            return bytes([_TCVN3_ENCODING[char]])
        if char.isascii() and ord(char) not in _TCVN3_CAPITAL_CONTROLS:
            return char.encode("ascii")
        base, tone = _split_tone(char)
        if tone is not None and (base in _TCVN3_ENCODING or base.isascii()):
            return _encode_char(base, encoding) + bytes([_TCVN3_ENCODING[tone]])
        raise VietnameseFormatError(f"{char!r} cannot be written in TCVN3")
    if encoding == "vni":
        if char.isascii():
            return char.encode("ascii")
        if char in _VNI_ENCODING:
            return _VNI_ENCODING[char]
        raise VietnameseFormatError(f"{char!r} cannot be written in VNI")
    raise VietnameseFormatError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def _split_tone(char: str) -> tuple[str, str | None]:
    decomposed = unicodedata.normalize("NFD", char)
    tones = [mark for mark in decomposed if mark in _TONES]
    if len(tones) != 1:
        return char, None
    base = unicodedata.normalize("NFC", "".join(mark for mark in decomposed if mark not in _TONES))
    return base, tones[0]


# ---------------------------------------------------------------- syllables and scores

_ONSETS = (
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "th", "tr", "qu",
    "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "",
)  # fmt: skip
# `k` is no Vietnamese final, but place names of the Central Highlands use it (Đắk Lắk).
_CODAS = ("ch", "ng", "nh", "c", "k", "m", "n", "p", "t", "")
_STOP_CODAS = frozenset({"c", "ch", "k", "p", "t"})
_NUCLEI = frozenset(
    (
        "a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y",
        "ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iê", "iu", "oa", "oă", "oe", "oi", "ôi", "ơi",
        "oo", "ua", "uâ", "uê", "ui", "uô", "uơ", "uy", "ưa", "ưi", "ươ", "ưu", "yê",
        "iêu", "oai", "oao", "oay", "oeo", "uây", "uôi", "uya", "uyê", "uyu", "ươi", "ươu", "yêu",
    )
)  # fmt: skip
_QUALITY_VOWELS = frozenset("ăâêôơư")


# Nuclei that end in a glide (or are ia/ua/ưa) take no final consonant; these need one.
_OPEN_NUCLEI = frozenset(
    ("ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "iu", "oi", "ôi", "ơi", "ui", "ưi", "ưu", "ia", "ua", "ưa",
     "uơ", "iêu", "oai", "oao", "oay", "oeo", "uây", "uôi", "uya", "uyu", "ươi", "ươu", "yêu")
)  # fmt: skip
_CLOSED_NUCLEI = frozenset(("ă", "â", "iê", "yê", "uô", "ươ", "uâ", "oă", "uyê", "oo"))
_PALATAL_NUCLEI = frozenset(("a", "ê", "i", "oa", "uy", "uê"))  # the only ones before -ch, -nh
_FRONT_VOWELS = frozenset("eêiy")


def _spelling_ok(onset: str, nucleus: str, coda: str) -> bool:
    """Vietnamese spelling: k/gh/ngh before e, ê, i; c/g/ng elsewhere; finals that fit the nucleus."""
    front = nucleus[0] in _FRONT_VOWELS
    if (onset in ("k", "gh", "ngh") and not front) or (onset in ("c", "ng") and front):
        return False
    if onset == "g" and front and nucleus[0] != "i":
        return False
    if not coda:
        return nucleus not in _CLOSED_NUCLEI
    if nucleus in _OPEN_NUCLEI:
        return False
    if coda in ("ch", "nh"):
        return nucleus in _PALATAL_NUCLEI
    if coda in ("c", "ng"):
        return nucleus not in ("ê", "i", "y", "uy", "uê", "ơ", "oe")
    return True


def _tone_positions(nucleus: str, has_coda: bool) -> set[int]:
    """Where the tone mark may sit within the nucleus (old and new placement both accepted)."""
    quality = [index for index, char in enumerate(nucleus) if char in _QUALITY_VOWELS]
    if quality:
        return {quality[-1]}
    if len(nucleus) == 1:
        return {0}
    if has_coda:
        return {len(nucleus) - 1}
    if len(nucleus) == 2:
        return {0, 1} if nucleus in ("oa", "oe", "uy") else {0}
    return {1}


@lru_cache(maxsize=65536)
def is_vietnamese_syllable(word: str) -> bool:
    """Whether `word` (letters only) is a well-formed Vietnamese syllable, tone mark included."""
    # Capitals in mid-word ("hỔ", "ếN") are what a wrong code page produces. (ABC capitals-font words,
    # "HUYệN", are put in capitals by the TCVN3 decoder before they are judged.)
    if not (word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower())):
        return False
    bare_chars: list[str] = []
    tone: str | None = None
    tone_at = -1
    for char in unicodedata.normalize("NFD", word.lower()):
        if char in _TONES:
            if tone is not None or not bare_chars:
                return False
            tone, tone_at = _TONES[char], len(bare_chars) - 1
        elif char in _QUALITY_MARKS:
            if not bare_chars:
                return False
            bare_chars[-1] = unicodedata.normalize("NFC", bare_chars[-1] + char)
        else:
            bare_chars.append(char)
    bare = "".join(bare_chars)
    if not bare or any(char not in _BARE_LETTERS for char in bare):
        return False
    for onset in _ONSETS:
        if not bare.startswith(onset):
            continue
        rest = bare[len(onset) :]
        for coda in _CODAS:
            if not rest.endswith(coda):
                continue
            nucleus = rest[: len(rest) - len(coda)]
            if nucleus not in _NUCLEI or not _spelling_ok(onset, nucleus, coda):
                continue
            if tone is None:
                return True
            if coda in _STOP_CODAS and tone not in ("acute", "dot"):
                continue
            if tone_at - len(onset) in _tone_positions(nucleus, bool(coda)):
                return True
    return False


_NOT_PLAIN = re.compile(r"[^\t\n\r\x20-\x7e]")
_VOWEL_LETTERS = frozenset("aeiouyAEIOUY") | {
    letter for letter in VIETNAMESE_LETTERS if unicodedata.normalize("NFD", letter)[0] in "aeiouyAEIOUY"
}
# Non-letters that Vietnamese text legitimately contains besides ASCII.
_ALLOWED_SYMBOLS = frozenset("\u00a0\u00b0\u00b2\u00b3\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u2026\u20ac\u2116")


_GLUED_SYMBOL = re.compile(r"[€•‘“](?<=[^\W\d_].)|[€•”…](?=[^\W\d_])|[–—](?<=[^\W\d_].)(?=[^\W\d_])")


@dataclass(frozen=True, slots=True)
class TextScore:
    """How Vietnamese a text looks: well-formed syllables among the units that could be judged."""

    valid_words: int
    judged_units: int

    @property
    def share(self) -> float | None:
        return self.valid_words / self.judged_units if self.judged_units else None


def score_vietnamese(text: str) -> TextScore:
    """Words with non-ASCII letters (and containing a vowel) are judged as syllables; stray symbols,
    control characters and unattached combining marks are judged as failures. ASCII words, codes
    and numbers carry no evidence and are not counted."""
    valid = judged = 0
    for word, count in Counter(_WORD.findall(text)).items():
        if word.isascii():
            continue
        foreign = any(not char.isascii() and char not in VIETNAMESE_LETTERS for char in word)
        if not foreign and not any(char in _VOWEL_LETTERS for char in word):
            continue  # abbreviations such as "ĐT" in "GD&ĐT"
        judged += count
        if is_vietnamese_syllable(word):
            valid += count
    for char, count in Counter(_NOT_PLAIN.findall(text)).items():
        if char in _ALLOWED_SYMBOLS or (char.isalpha() and not char.isascii()):
            continue
        judged += count
    # Allowed symbols glued to letters where they (almost) never stand ("B€", "H•I", "G–I"): a wrong code page.
    judged += len(_GLUED_SYMBOL.findall(text))
    return TextScore(valid, judged)


# ---------------------------------------------------------------- mojibake

# Windows-1252 characters of the bytes 0x80-0x9F, which mojibake of UTF-8 shows next to its lead.
_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_DOUBLE_ENCODED = re.compile(f"[\u00c2-\u00ef][\u0080-\u00bf{_CP1252_HIGH}]{{1,2}}")
_SOFT_FOLLOWERS = frozenset("\u00a0‘’“”…–—•")
# Each starts with its character class (a lookbehind first would be tried at every position of the text).
_LATIN1_SYMBOL_IN_WORD = re.compile(r"[¡-¯±´-¿](?:(?<=[^\W\d_].)|(?=[^\W\d_]))")
_ABC_GUILLEMET = re.compile(r"[«»](?<=[^\W\d_].)(?=[^\W\d_])")
# Icelandic letters in Vietnamese text: Windows-1258's đ, Đ and combining tilde seen through Latin-1.
_WINDOWS_1258_AS_LATIN1 = re.compile(r"[ðÐÞþ](?:(?<=[^\W\d_].)|(?=[^\W\d_]))")
_C1_OR_REPLACEMENT = re.compile("[\u0080-\u009f\ufffd]")


def mojibake_reason(text: str) -> str | None:
    """Why `text` looks garbled (a mis-decoded encoding), or None. Names the tell-tale characters
    only, never the surrounding text (which may be personal data)."""
    found = _C1_OR_REPLACEMENT.search(text)
    if found:
        what = "U+FFFD replacement characters" if found[0] == "\ufffd" else "C1 control characters"
        return f"contains {what}"
    for match in _DOUBLE_ENCODED.finditer(text):
        raw = bytearray()
        for char in match[0]:
            raw += char.encode("cp1252") if char in _CP1252_HIGH else char.encode("latin-1")
        try:
            repaired = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                repaired = raw[:2].decode("utf-8")
            except UnicodeDecodeError:
                continue
        if not repaired or repaired[0].isascii():
            continue
        lead, follower = match[0][0], match[0][1]
        after_small_letter = match.start() > 0 and text[match.start() - 1].islower()
        if lead in VIETNAMESE_LETTERS and follower in _SOFT_FOLLOWERS and not after_small_letter:
            continue  # "XÃ”": a capital word before a closing quote, not necessarily mojibake
        return f"contains {match[0]!r}, UTF-8 text once decoded as Windows-1252 (it stood for {repaired[0]!r})"
    found = _LATIN1_SYMBOL_IN_WORD.search(text) or _ABC_GUILLEMET.search(text)
    if found:
        return f"contains {found[0]!r} inside a word, 8-bit text (TCVN3?) once decoded as Latin-1"
    found = _WINDOWS_1258_AS_LATIN1.search(text)
    if found:
        return f"contains {found[0]!r} in a word, Windows-1258 text (đ, Đ, tilde) once decoded as Latin-1"
    return None


# ---------------------------------------------------------------- decoding

# A candidate decoding is taken when at least this share of its judged words are syllables ...
ACCEPT_SHARE = 0.75
# ... and the runner-up scores at least this much lower.
MARGIN = 0.25
# Valid UTF-8 is refused when re-reading it as 8-bit bytes gives at least this much more Vietnamese. Legitimate
# UTF-8 text rarely re-encodes to 8 bits at all (ạ, ơ, đ are in no Latin-1 code page), so this can be small.
REREAD_MARGIN = 0.1
# Candidates are compared on the first part of the file; the winner is then checked on all of it.
SAMPLE_BYTES = 1 << 20

_NAMES = {"cp1258": "Windows-1258", "tcvn3": "TCVN3 (ABC)", "vni": "VNI", "utf-8": "UTF-8"}
_UTF8_VIETNAMESE = re.compile(rb"\xe1[\xba\xbb][\x80-\xbf]|[\xc3\xc4\xc6][\x80-\xbf]")


class UndecodableTextError(VietnameseFormatError):
    """The bytes could not be decoded with confidence; `reason` says why (no text is returned)."""

    def __init__(self, reason: str, best_guess: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.best_guess = best_guess


@dataclass(frozen=True, slots=True)
class DecodedText:
    """NFC text and the encoding it was read in (`utf-8`, `utf-8-sig`, `utf-16`, `cp1258`, `tcvn3`)."""

    text: str
    encoding: str


def decode_text(data: bytes) -> DecodedText:
    """Bytes from a Vietnamese system as NFC text; raises UndecodableTextError when unsure."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return _checked(data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError as problem:
            raise UndecodableTextError(
                f"has a UTF-16 byte-order mark but is not valid UTF-16: {problem.reason}"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
        except UnicodeDecodeError as problem:
            raise UndecodableTextError(
                f"has a UTF-8 byte-order mark but is not valid UTF-8 (byte offset {problem.start + 3})"
            ) from None
        return _checked_utf8(text, "utf-8-sig")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_8bit(data)
    # bytes.translate deletes in C: a byte-by-byte Python scan took seconds on a 40 MB export.
    if text.isascii() and len(data.translate(None, _TCVN3_CONTROL_BYTES)) != len(data):
        return _decode_8bit(data)
    return _checked_utf8(text, "utf-8")


def _checked(text: str, encoding: str) -> DecodedText:
    text = unicodedata.normalize("NFC", text)
    reason = mojibake_reason(text)
    if reason:
        raise UndecodableTextError(f"decodes as {_NAMES.get(encoding, encoding)} but {reason}", encoding)
    return DecodedText(text, encoding)


def _checked_utf8(text: str, encoding: str) -> DecodedText:
    decoded = _checked(text, encoding)
    share = score_vietnamese(decoded.text).share
    if share is not None and share < 1.0:
        # Readable only in another encoding: 8-bit text once decoded as Windows-1252/Latin-1 and saved as UTF-8.
        try:
            raw = decoded.text.encode("cp1252")
        except UnicodeEncodeError:
            try:
                raw = decoded.text.encode("latin-1")
            except UnicodeEncodeError:
                return decoded
        for name, decoder in _REREADINGS:
            try:
                other = score_vietnamese(decoder(raw)).share
            except UnicodeDecodeError:
                continue
            if other is not None and other >= ACCEPT_SHARE and other - share >= REREAD_MARGIN:
                raise UndecodableTextError(
                    f"is valid UTF-8 but reads as Vietnamese only as {_NAMES[name]} bytes once decoded as "
                    f"Latin-1 ({share:.0%} of its words are Vietnamese syllables, {other:.0%} re-read as "
                    f"{_NAMES[name]}): convert the source file again",
                    name,
                )
    return decoded


def _strict_utf8(data: bytes) -> str:
    return unicodedata.normalize("NFC", data.decode("utf-8"))


def _decode_cp1258(data: bytes) -> str:
    return unicodedata.normalize("NFC", data.decode("cp1258"))


def _decode_tcvn3_restored(data: bytes) -> str:
    return _restore_abc_capitals(_decode_tcvn3(data))


def _small_letter_share(text: str) -> float | None:
    letters = [char for char in text if char in VIETNAMESE_LETTERS]
    return sum(char.islower() for char in letters) / len(letters) if letters else None


_CANDIDATES = (("cp1258", _decode_cp1258), ("tcvn3", _decode_tcvn3_restored), ("vni", _decode_vni))
_REREADINGS = (("utf-8", _strict_utf8), *_CANDIDATES)


def _decode_8bit(data: bytes) -> DecodedText:
    sample = data if len(data) <= SAMPLE_BYTES else data[: data.rfind(b"\n", 0, SAMPLE_BYTES) + 1 or SAMPLE_BYTES]
    scored: list[tuple[float, int, str]] = []
    for preference, (name, decoder) in enumerate(reversed(_CANDIDATES)):
        try:
            share = score_vietnamese(decoder(sample)).share
        except UnicodeDecodeError:
            continue
        # No judged word at all: nothing contradicts a code page, but nothing shows VNI either.
        scored.append((share if share is not None else 0.0 if name == "vni" else 1.0, preference, name))
    scored.sort(reverse=True)
    best_share, _, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    utf8_pieces = len(_UTF8_VIETNAMESE.findall(sample))
    if best_share < ACCEPT_SHARE:
        if utf8_pieces >= 3:
            raise UndecodableTextError(
                f"is not valid UTF-8, yet holds {utf8_pieces} UTF-8 sequences of Vietnamese letters: "
                "it mixes UTF-8 with an 8-bit encoding",
                "utf-8",
            )
        raise UndecodableTextError(
            "is invalid UTF-8 and not a known 8-bit Vietnamese encoding (best guess "
            f"{_NAMES[best]}: {best_share:.0%} of its words are Vietnamese syllables)",
            best,
        )
    if best == "vni":
        raise UndecodableTextError(
            f"looks like VNI ({best_share:.0%} of its words read as Vietnamese in VNI): VNI is not "
            "supported, export the file as UTF-8",
            "vni",
        )
    if best_share - runner_up < MARGIN:
        second = scored[1][2]
        texts = {name: decoder(sample) for name, decoder in _CANDIDATES if name in (best, second)}
        if texts[best] != texts[second]:
            # Both read as Vietnamese. The better reading is taken only when it also has clearly more small
            # letters (a wrong code page turns small letters into capitals: "à" in Windows-1258 is "Ổ" in
            # TCVN3); never when VNI is one of the two.
            shares = (_small_letter_share(texts[best]), _small_letter_share(texts[second]))
            lead = shares[0] - shares[1] if shares[0] is not None and shares[1] is not None else 0.0
            if best_share <= runner_up or lead < 0.2 or "vni" in texts:
                raise UndecodableTextError(
                    f"is ambiguous: it reads as {_NAMES[best]} ({best_share:.0%}) and as {_NAMES[second]} "
                    f"({runner_up:.0%}); too little Vietnamese text to tell",
                    best,
                )
    decoder = dict(_CANDIDATES)[best]
    text = decoder(data)
    if sample is not data:
        whole = score_vietnamese(text).share
        if whole is not None and whole < ACCEPT_SHARE:
            raise UndecodableTextError(
                f"begins in {_NAMES[best]} but only {whole:.0%} of the whole file reads as Vietnamese in it: "
                "mixed encodings?",
                best,
            )
    return _checked(text, best)
