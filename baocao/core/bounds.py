"""The bounds every value a source sends must keep before it reaches the warehouse, and the rules a
value outside them breaks.

A department system, a legacy database or a drop folder can send anything: a date in year 9999, a
10 MiB field name, a NUL byte or a right-to-left override in a dossier code, a list where a word
belongs. Such a record is a poison record: it is quarantined with the rule it breaks and the rest of
its batch goes on, the same on SQLite (which would store it as is) and PostgreSQL (which would refuse
the whole batch). Rules are named `<family>.<breach>` (`dossier.date_out_of_range`, …). What a
failure says of the value is its shape, length or offending code point, never the text itself, which
may be personal data or the poison.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.tables import metadata


class Family(StrEnum):
    """What a record is: the first part of a rule's name."""

    DOSSIER = "dossier"
    PETITION = "petition"
    CATALOGUE = "catalogue"
    ICT = "ict"
    EGOV = "egov"


class Breach(StrEnum):
    """What is wrong with a value: the second part of a rule's name."""

    DATE_OUT_OF_RANGE = "date_out_of_range"  # before EARLIEST_DATE or more than YEARS_AHEAD after the run
    DATE_INVALID = "date_invalid"  # a date that cannot be read
    TEXT_TOO_LONG = "text_too_long"  # longer than its warehouse column
    CONTROL_CHARACTER = "control_character"  # a control, format (bidi) or separator character
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # an integer its column cannot hold, or not finite
    UNKNOWN_SHAPE = "unknown_shape"  # not a record, or a list or object where one value belongs


def rule(family: Family, breach: Breach) -> str:
    return f"{family.value}.{breach.value}"


# Every bounds rule with what it means (the quarantine is read with this).
BOUNDS_RULES: dict[str, str] = {
    rule(family, breach): meaning
    for family in Family
    for breach, meaning in (
        (Breach.DATE_OUT_OF_RANGE, "a date before 1990-01-01 or more than ten years after the run"),
        (Breach.DATE_INVALID, "a date that cannot be read"),
        (Breach.TEXT_TOO_LONG, "a text longer than its warehouse column"),
        (Breach.CONTROL_CHARACTER, "a control, bidirectional-format or line-separator character"),
        (Breach.NUMBER_OUT_OF_RANGE, "a number its warehouse column cannot hold"),
        (Breach.UNKNOWN_SHAPE, "not a record, or a list or object where a single value belongs"),
    )
}

# No administrative-reform system predates this; earlier dates are typing errors or sentinels (0001-01-01).
EARLIEST_DATE = datetime(1990, 1, 1)
# Deadlines lie ahead, but not by decades: later dates are sentinels (9999-12-31) or typing errors.
YEARS_AHEAD = 10

# The warehouse's INTEGER is 32-bit on PostgreSQL.
INTEGER_RANGE = (-(2**31), 2**31 - 1)

# Whitespace a name or free text may hold; a code holds none of these but the space.
ORDINARY_WHITESPACE = frozenset("\t\n\r")
# Unicode categories refused in codes: controls (C0, DEL, C1), format characters (the bidirectional
# overrides and isolates such as U+202E, zero-width characters), surrogates (not encodable: PostgreSQL
# refuses them), private use, unassigned, and line and paragraph separators.
CODE_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# In names and free text: the same but ordinary whitespace, and format characters other than the
# bidirectional controls (a zero-width joiner is harmless in a name; an override reorders what a
# clerk reads).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TEXT_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class Window:
    """The dates a run accepts: from EARLIEST_DATE to YEARS_AHEAD years after its `now` (naive local)."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, now: datetime) -> Window:
        local_now = now.astimezone(LOCAL_TIMEZONE).replace(tzinfo=None) if now.tzinfo else now
        try:
            latest = local_now.replace(year=local_now.year + YEARS_AHEAD)
        except ValueError:  # 29 February
            latest = local_now.replace(year=local_now.year + YEARS_AHEAD, day=28)
        return cls(EARLIEST_DATE, latest)

    @functools.cached_property
    def _aware(self) -> tuple[datetime, datetime]:
        return self.earliest.replace(tzinfo=LOCAL_TIMEZONE), self.latest.replace(tzinfo=LOCAL_TIMEZONE)

    def holds(self, moment: date) -> bool:
        """Whether a date or time (aware, or naive local) is inside the window; never overflows (aware
        times are compared as they are, before any move to UTC+7)."""
        if isinstance(moment, datetime):
            if moment.tzinfo is not None:
                earliest, latest = self._aware
                return earliest <= moment <= latest
            return self.earliest <= moment <= self.latest
        return self.earliest.date() <= moment <= self.latest.date()


@dataclass(frozen=True, slots=True)
class Failure:
    """One value out of bounds: the rule, the field, and a description of the value that never holds
    the value's text (its length, the code point and position, its shape, its year)."""

    rule: str
    field: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}: {self.value}"


@functools.cache
def column_limit(table: str, column: str) -> int | None:
    """The length of a text column of the warehouse (`String(500)` → 500), None when unbounded."""
    column_type = metadata.tables[table].c[column].type
    return column_type.length if isinstance(column_type, sa.String) else None


def refused_character(text: str, *, code: bool) -> tuple[int, str] | None:
    """The first character a code (or a name, `code=False`) may not hold: its position and code point."""
    if text.isprintable():
        # The common case, in C: a printable text holds no character of any refused category.
        return None
    for position, character in enumerate(text):
        category = unicodedata.category(character)
        if code:
            refused = category in CODE_REFUSED_CATEGORIES
        else:
            refused = (category in TEXT_REFUSED_CATEGORIES and character not in ORDINARY_WHITESPACE) or (
                character in BIDI_CONTROLS
            )
        if refused:
            return position, f"U+{ord(character):04X}"
    return None


def check_text(family: Family, field: str, text: str, limit: int | None, *, code: bool) -> list[Failure]:
    """The bounds a text breaks: its column's length, and the characters it may hold."""
    failures = []
    if limit is not None and len(text) > limit:
        failures.append(
            Failure(rule(family, Breach.TEXT_TOO_LONG), field, f"{len(text)} characters, the limit is {limit}")
        )
    found = refused_character(text, code=code)
    if found is not None:
        position, point = found
        failures.append(Failure(rule(family, Breach.CONTROL_CHARACTER), field, f"{point} at character {position + 1}"))
    return failures


def check_date(family: Family, field: str, moment: date, window: Window) -> list[Failure]:
    if window.holds(moment):
        return []
    return [
        Failure(
            rule(family, Breach.DATE_OUT_OF_RANGE),
            field,
            f"year {moment.year}, outside {window.earliest:%Y-%m-%d} to {window.latest:%Y-%m-%d}",
        )
    ]


def shape_of(value: object) -> str:
    """What a value is, in words that never hold its content."""
    if isinstance(value, dict):
        return f"an object of {len(value)} field(s)"
    if isinstance(value, list | tuple | set):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, str):
        return f"a text of {len(value)} character(s)"
    return f"a value of type {type(value).__name__}"


def printable(text: object, limit: int = 80) -> str:
    """A code or key safe to write in a log, a message or the quarantine: every character a code may not
    hold escaped (`\\x00`, `\\x1b`, `\\u202e`), and cut at `limit` characters with how many were left out.
    Personal data never comes here: only record keys."""
    value = str(text)
    cut = value[:limit]
    escaped = "".join(
        character
        if unicodedata.category(character) not in CODE_REFUSED_CATEGORIES
        else (f"\\x{ord(character):02x}" if ord(character) < 0x100 else f"\\u{ord(character):04x}")
        for character in cut
    )
    if len(value) > limit:
        escaped += f"…(+{len(value) - limit} characters)"
    return escaped


def safe_key(text: str, limit: int) -> bool:
    """Whether a code can name its record as it is: within `limit` and holding no refused character."""
    return len(text) <= limit and refused_character(text, code=True) is None
