"""The canonical dossier's vocabulary: its columns, channels and statuses, the local time zone, and
the source fields that carry personal data. Every layer speaks it; the mapping into it is
`baocao.transforms.canonical`."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import pandas as pd

# Vietnam keeps UTC+7 all year (no daylight saving), so a fixed offset is exact.
LOCAL_TIMEZONE = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


class Channel(StrEnum):
    ONLINE = "ONLINE"
    DIRECT = "DIRECT"
    POSTAL = "POSTAL"


class Status(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    RESOLVED = "RESOLVED"
    RETURNED = "RETURNED"
    WITHDRAWN = "WITHDRAWN"
    CANCELLED = "CANCELLED"


FINISHED_STATUSES = (Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN)


class Col(StrEnum):
    """Canonical dossier columns, spelled once."""

    CODE = "code"
    AGENCY_CODE = "agency_code"
    PROCEDURE_CODE = "procedure_code"
    FIELD_CODE = "field_code"
    FIELD_NAME = "field_name"
    CHANNEL = "channel"
    STATUS = "status"
    RECEIVED_AT = "received_at"
    DUE_AT = "due_at"
    FINISHED_AT = "finished_at"
    FEE_REQUIRED = "fee_required"
    PAID_ONLINE = "paid_online"
    DIGITIZED = "digitized"
    RESULT_ELECTRONIC = "result_electronic"
    RATING = "rating"
    UPDATED_AT = "updated_at"
    DELETED = "deleted"


TIME_COLUMNS = (Col.RECEIVED_AT, Col.DUE_AT, Col.FINISHED_AT, Col.UPDATED_AT)


FLAG_COLUMNS = (Col.FEE_REQUIRED, Col.PAID_ONLINE, Col.DIGITIZED, Col.RESULT_ELECTRONIC, Col.DELETED)


TEXT_COLUMNS = (
    Col.CODE,
    Col.AGENCY_CODE,
    Col.PROCEDURE_CODE,
    Col.FIELD_CODE,
    Col.FIELD_NAME,
    Col.CHANNEL,
    Col.STATUS,
)


CANONICAL_COLUMNS: tuple[str, ...] = tuple(c.value for c in Col)


# Derived at staging so that "due date sensible" is one plain range check in any SQL engine.
DUE_DAYS = "due_days"


# Source fields that carry applicants' personal data: never read, whatever the mapping says.
PERSONAL_FIELDS = frozenset({"applicant", "name", "id_number", "phone", "address", "ho_ten", "so_cccd", "dien_thoai"})


def personal_part(path: str) -> str | None:
    """The first part of a source field's dotted path (`applicant.name`) that names personal data, if any:
    every part is checked, so neither `applicant.code` nor `contact.phone` is read."""
    for part in path.split("."):
        if part.strip().casefold() in _PERSONAL_CASEFOLDED:
            return part
    return None


_PERSONAL_CASEFOLDED = frozenset(name.casefold() for name in PERSONAL_FIELDS)


def nfc(text: object) -> str | None:
    """NFC-normalised text, stripped; None for missing or empty values."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    value = unicodedata.normalize("NFC", str(text)).strip()
    return value or None


def to_local_naive(value: object) -> datetime | None:
    """A time as naive local wall time (UTC+7); a time without offset already means UTC+7.

    Unreadable values become None, which the validation suite reports.
    """
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(LOCAL_TIMEZONE).replace(tzinfo=None)
        except OverflowError:  # at the ends of the calendar (0001-01-01+08:00, 9999-12-31Z)
            return None
    return moment


ONLINE_TYPES = ("FULL", "PARTIAL", "NONE")
