"""Records of the simulated one-stop-shop system: agencies, fields, procedures and dossier histories.

A dossier's history is its static part (code, agency, procedure, reception, due date, applicant)
plus a tuple of states, one per change, each with its own `updated_at`; `Dossier` is the full
record the system shows for one state. Times are aware, in Asia/Ho_Chi_Minh (UTC+7).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import NamedTuple

# Asia/Ho_Chi_Minh has been UTC+7 without daylight saving since 1975: a fixed offset is exact for
# every date the simulator produces, and much cheaper than a zoneinfo lookup per time.
LOCAL_TIMEZONE = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


class Level(StrEnum):
    PROVINCE = "PROVINCE"
    COMMUNE = "COMMUNE"


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


class OnlineType(StrEnum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class Agency:
    code: str
    name: str
    level: Level
    # Short form used inside dossier codes: `H99.01` for a department, `H99.03.05` for a commune.
    dossier_prefix: str


@dataclass(frozen=True, slots=True)
class Field:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Procedure:
    """A procedure as one agency offers it; (code, agency_code) is the key."""

    code: str
    name: str
    field_code: str
    agency_code: str
    online_type: OnlineType
    fee_required: bool
    online_payment: bool
    published_on_time: bool
    publication_updated_on_time: bool
    content_complete: bool
    # Not part of the REST contract: the generator uses it to decide whether dossiers get a due date.
    time_limit_days: int | None


class Applicant(NamedTuple):
    """Personal data (fake but realistic): served in responses, never logged."""

    name: str
    id_number: str
    phone: str
    address: str


# Dossier records are NamedTuples rather than frozen dataclasses: a calibrated year has half a
# million dossiers and two million versions, and tuples are built several times faster.


class DossierState(NamedTuple):
    """What changes between two versions of a dossier."""

    updated_at: datetime
    status: Status
    finished_at: datetime | None
    paid_online: bool
    digitized: bool
    result_electronic: bool
    rating: int | None
    deleted: bool


class Dossier(NamedTuple):
    """One version of a dossier, with every field of the REST contract."""

    code: str
    agency_code: str
    procedure_code: str
    field_code: str
    field_name: str
    channel: Channel
    received_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    status: Status
    fee_required: bool
    paid_online: bool
    digitized: bool
    result_electronic: bool
    rating: int | None
    applicant: Applicant
    updated_at: datetime
    deleted: bool


class DossierHistory(NamedTuple):
    """A dossier's static part and its states, oldest first (strictly increasing `updated_at`)."""

    code: str
    agency_code: str
    procedure_code: str
    field_code: str
    field_name: str
    channel: Channel
    received_at: datetime
    due_at: datetime | None
    fee_required: bool
    applicant: Applicant
    states: tuple[DossierState, ...]

    def version(self, position: int) -> Dossier:
        """The full record of state `position` (negative positions count from the latest)."""
        state = self.states[position]
        return Dossier(
            self.code,
            self.agency_code,
            self.procedure_code,
            self.field_code,
            self.field_name,
            self.channel,
            self.received_at,
            self.due_at,
            state.finished_at,
            state.status,
            self.fee_required,
            state.paid_online,
            state.digitized,
            state.result_electronic,
            state.rating,
            self.applicant,
            state.updated_at,
            state.deleted,
        )

    def latest(self) -> Dossier:
        return self.version(-1)

    def as_of(self, moment: datetime) -> Dossier | None:
        """The version current at `moment` (latest with updated_at <= moment); None before reception."""
        position = bisect_right([state.updated_at for state in self.states], moment)
        return self.version(position - 1) if position else None

    def versions(self) -> list[Dossier]:
        return [self.version(position) for position in range(len(self.states))]
