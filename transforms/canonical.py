"""Canonical dossier records: the one shape every source is mapped into before validation.

Mapping a source is configuration (which source field feeds which canonical column, which source
words mean which channel or status); this module is the code written once. Conversion is lenient:
a value it cannot read becomes null or stays as the unknown word, and the validation suite then
quarantines the record naming the rule. Applicants' personal data is never copied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pandas as pd

from baocao.core.bounds import (
    INTEGER_RANGE,
    Breach,
    Failure,
    Family,
    Window,
    check_date,
    check_text,
    column_limit,
    printable,
    rule,
    shape_of,
)
from baocao.core.canonical import (
    CANONICAL_COLUMNS,
    DUE_DAYS,
    FLAG_COLUMNS,
    LOCAL_TIMEZONE,
    ONLINE_TYPES,
    TIME_COLUMNS,
    Col,
    nfc,
    personal_part,
    to_local_naive,
)
from baocao.core.errors import ConfigurationError


def to_flag(value: object) -> bool | None:
    """Booleans as sources write them: true/false, 1/0, "1"/"0", "true"/"false"; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "y", "có"}:
        return True
    if text in {"0", "false", "f", "no", "n", "không"}:
        return False
    return None


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    """A field by dotted path (`a.b`), None when any step is missing."""
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def canonical_record(
    record: Mapping[str, Any],
    field_map: Mapping[str, str],
    value_maps: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """One source record in canonical form. `field_map`: canonical column → source field path;
    `value_maps`: canonical column → {source word → canonical word} (e.g. a vendor's status words)."""
    row: dict[str, Any] = {}
    for column in Col:
        source_field = field_map.get(column.value, column.value)
        if personal_part(source_field) is not None:
            raise ConfigurationError(
                f"field mapping: sends personal field {source_field!r} into column {column.value!r}; "
                "applicants' personal data never enters the warehouse"
            )
        raw = _lookup(record, source_field)
        words = value_maps.get(column.value)
        if words is not None and raw is not None:
            raw = words.get(str(raw), raw)
        if column in TIME_COLUMNS:
            row[column.value] = to_local_naive(raw)
        elif column in FLAG_COLUMNS:
            row[column.value] = to_flag(raw)
        elif column is Col.RATING:
            row[column.value] = int(raw) if isinstance(raw, int | float) and not pd.isna(raw) else None
        else:
            text = nfc(raw)
            row[column.value] = text.upper() if text and column in (Col.CHANNEL, Col.STATUS) else text
    if row[Col.DELETED.value] is None:
        row[Col.DELETED.value] = False
    return row


# Text columns that hold codes and words (no whitespace but the space, no control character at all);
# the field's name is free text.
CODE_COLUMNS = frozenset({Col.CODE, Col.AGENCY_CODE, Col.PROCEDURE_CODE, Col.FIELD_CODE, Col.CHANNEL, Col.STATUS})
_SCALAR_TYPES = (str, int, float, bool, date, pd.Timestamp)


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """A source record mapped and checked against the bounds (`baocao.core.bounds`): the canonical row
    when it keeps every bound, else the failures (`row` is None). `key` names the record in messages
    and the quarantine: its dossier code as is when the code is sound, else the code escaped and cut
    (`bounds.printable`), None when the record has no code."""

    row: dict[str, Any] | None
    failures: tuple[Failure, ...]
    key: str | None


def checked_record(
    record: object,
    field_map: Mapping[str, str],
    value_maps: Mapping[str, Mapping[str, str]],
    window: Window,
) -> CheckedRecord:
    """`canonical_record` that also checks each value against the bounds of its warehouse column: dates
    in `window`, texts within their column's length and free of control characters, integers that fit,
    a value (not a list or an object) in every field. Never raises on what a source sends; a mapping
    that reaches for personal data is a ConfigurationError, as in `canonical_record`."""
    if not isinstance(record, Mapping):
        return CheckedRecord(
            None, (Failure(rule(Family.DOSSIER, Breach.UNKNOWN_SHAPE), "record", shape_of(record)),), None
        )
    failures: list[Failure] = []
    row: dict[str, Any] = {}
    for column in Col:
        name = column.value  # read once: an enum member's value is a descriptor call
        source_field = field_map.get(name, name)
        if personal_part(source_field) is not None:
            raise ConfigurationError(
                f"field mapping: sends personal field {source_field!r} into column {name!r}; "
                "applicants' personal data never enters the warehouse"
            )
        raw = _lookup(record, source_field)
        row[name] = None
        if raw is not None and not isinstance(raw, _SCALAR_TYPES):
            failures.append(Failure(rule(Family.DOSSIER, Breach.UNKNOWN_SHAPE), name, shape_of(raw)))
            continue
        words = value_maps.get(name)
        if words is not None and raw is not None:
            raw = words.get(str(raw), raw)
        if column in TIME_COLUMNS:
            row[name] = _checked_moment(column, raw, window, failures)
        elif column in FLAG_COLUMNS:
            row[name] = to_flag(raw)
        elif column is Col.RATING:
            row[name] = _checked_integer(column, raw, failures)
        else:
            text = nfc(raw)
            if text is not None:
                limit = column_limit("dossiers", name)
                failures += check_text(Family.DOSSIER, name, text, limit, code=column in CODE_COLUMNS)
            row[name] = text.upper() if text and column in (Col.CHANNEL, Col.STATUS) else text
    code = row[Col.CODE.value]
    code_broken = any(failure.field == Col.CODE.value for failure in failures)
    key = printable(code, 60) if code is not None and code_broken else code
    if failures:
        return CheckedRecord(None, tuple(failures), key)
    if row[Col.DELETED.value] is None:
        row[Col.DELETED.value] = False
    return CheckedRecord(row, (), key)


def _checked_moment(column: Col, raw: object, window: Window, failures: list[Failure]) -> datetime | None:
    """A time as naive local wall time when it is readable and in `window`; else None, a failure noted.
    The window is checked before the time is moved to UTC+7, which overflows at the ends of the calendar."""
    if raw is None or raw == "" or (isinstance(raw, float) and math.isnan(raw)) or raw is pd.NaT:
        return None
    moment: date
    if isinstance(raw, date):
        moment = raw
    else:
        text = str(raw).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            failures.append(
                Failure(
                    rule(Family.DOSSIER, Breach.DATE_INVALID), column.value, f"{shape_of(raw)}, not an ISO 8601 time"
                )
            )
            return None
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time.min)
    broken = check_date(Family.DOSSIER, column.value, moment, window)
    if broken:
        failures += broken
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL_TIMEZONE).replace(tzinfo=None)
    return moment


def _checked_integer(column: Col, raw: object, failures: list[Failure]) -> int | None:
    if not isinstance(raw, int | float) or (isinstance(raw, float) and math.isnan(raw)):
        return None
    low, high = INTEGER_RANGE
    if (isinstance(raw, float) and not math.isfinite(raw)) or not low <= raw <= high:
        failures.append(
            Failure(rule(Family.DOSSIER, Breach.NUMBER_OUT_OF_RANGE), column.value, f"outside {low} to {high}")
        )
        return None
    return int(raw)


def due_days(received_at: datetime | None, due_at: datetime | None) -> float | None:
    if received_at is None or due_at is None:
        return None
    return (due_at - received_at).total_seconds() / 86400


def deduplicate_latest(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per dossier code: the latest `updated_at` wins, the later-seen row on a tie.

    Pulls overlap on purpose, so the same dossier arrives more than once.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        code = row[Col.CODE.value]
        if code is None:
            # No code: kept under a synthetic key so that validation can quarantine it by position.
            code = f"<no code #{len(latest)}>"
        held = latest.get(code)
        if held is None or _not_older(row, held):
            latest[code] = row
    return list(latest.values())


def _not_older(row: dict[str, Any], held: dict[str, Any]) -> bool:
    new, old = row[Col.UPDATED_AT.value], held[Col.UPDATED_AT.value]
    if new is None or old is None:
        return old is None
    return bool(new >= old)


def canonical_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Canonical rows as a typed frame with the derived `due_days` column."""
    frame = pd.DataFrame(list(rows), columns=list(CANONICAL_COLUMNS))
    for column in TIME_COLUMNS:
        frame[column.value] = pd.to_datetime(frame[column.value])
    frame[DUE_DAYS] = (frame[Col.DUE_AT.value] - frame[Col.RECEIVED_AT.value]).dt.total_seconds() / 86400
    frame[Col.RATING.value] = frame[Col.RATING.value].astype("Int64")
    return frame


def canonical_procedure(record: Mapping[str, Any]) -> dict[str, Any]:
    """A catalogue entry (REST procedure fields, or the XML export mapped to them) in canonical form."""
    online_type = (nfc(record.get("online_type")) or "").upper()
    return {
        "code": nfc(record.get("code")),
        "agency_code": nfc(record.get("agency_code")),
        "name": nfc(record.get("name")),
        "field_code": nfc(record.get("field_code")),
        "online_type": online_type if online_type in ONLINE_TYPES else None,
        "fee_required": to_flag(record.get("fee_required")),
        "online_payment": to_flag(record.get("online_payment")),
        "published_on_time": to_flag(record.get("published_on_time")),
        "publication_updated_on_time": to_flag(record.get("publication_updated_on_time")),
        "content_complete": to_flag(record.get("content_complete")),
    }


# Catalogue entry fields that are codes (checked as codes), and the name (checked as free text).
PROCEDURE_CODE_FIELDS = ("code", "agency_code", "field_code", "online_type")
PROCEDURE_TEXT_FIELDS = ("name",)


def procedure_failures(record: object) -> list[Failure]:
    """The bounds a catalogue entry (REST procedure fields, or the XML export mapped to them) breaks:
    a record, one value per field, codes and the name within their `procedures` columns and free of
    control characters. Checked before `canonical_procedure`."""
    if not isinstance(record, Mapping):
        return [Failure(rule(Family.CATALOGUE, Breach.UNKNOWN_SHAPE), "record", shape_of(record))]
    failures: list[Failure] = []
    for name in (*PROCEDURE_CODE_FIELDS, *PROCEDURE_TEXT_FIELDS):
        raw = record.get(name)
        if raw is not None and not isinstance(raw, _SCALAR_TYPES):
            failures.append(Failure(rule(Family.CATALOGUE, Breach.UNKNOWN_SHAPE), name, shape_of(raw)))
            continue
        text = nfc(raw)
        if text is not None:
            limit = column_limit("procedures", name)
            failures += check_text(Family.CATALOGUE, name, text, limit, code=name in PROCEDURE_CODE_FIELDS)
    flags = ("fee_required", "online_payment", "published_on_time", "publication_updated_on_time", "content_complete")
    for name in flags:
        raw = record.get(name)
        if raw is not None and not isinstance(raw, _SCALAR_TYPES):
            failures.append(Failure(rule(Family.CATALOGUE, Breach.UNKNOWN_SHAPE), name, shape_of(raw)))
    return failures


def procedure_key(record: object) -> str:
    """A catalogue entry's name in messages: its code and agency, escaped and cut (they may be the poison)."""
    if not isinstance(record, Mapping):
        return "procedure (not a record)"
    code, agency = record.get("code"), record.get("agency_code")
    shown = [printable(value, 60) if isinstance(value, str) else "?" for value in (code, agency)]
    return f"procedure {shown[0]} of {shown[1]}"
