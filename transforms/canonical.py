"""Canonical dossier records: the one shape every source is mapped into before validation.

Mapping a source is configuration (which source field feeds which canonical column, which source
words mean which channel or status); this module is the code written once. Conversion is lenient:
a value it cannot read becomes null or stays as the unknown word, and the validation suite then
quarantines the record naming the rule. Applicants' personal data is never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from baocao.core.canonical import (
    CANONICAL_COLUMNS,
    DUE_DAYS,
    FLAG_COLUMNS,
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
