"""Reference TTHC_RESULTS (form II.06a) computed one dossier at a time, for checking the pipeline.

This is a deliberately plain, independent reading of DOMAIN.md's definitions: no pandas, no SQL,
one `if` per rule, so that the pipeline's vectorised aggregation can be tested against it. It reads
the current state of each dossier (as the pipeline sees it after de-duplicating by code):

- CANCELLED (entered by mistake) and deleted dossiers count nowhere.
- The period runs from 00:00 of the start date to 24:00 of the end date, local time (UTC+7),
  whatever zone a time is written in; a naive time means local time.
- "Finished" = status RESOLVED, RETURNED or WITHDRAWN with a finishing time; "open" at an instant =
  received before it and not finished before it.
- carried_over: received before the start and open at the start; received_online / received_direct:
  received in the period, by channel ONLINE / DIRECT or POSTAL.
- Finished in the period: RETURNED, WITHDRAWN and dossiers without a due date are on time; a RESOLVED
  one after `due_at` is late (a later hour of the due day is late); on a calendar day before the
  due date's day is early; otherwise (on the due day, not after `due_at`) on time.
- Open at the end of the period: within the time limit when awaiting the applicant's supplements
  (status SUPPLEMENT_REQUESTED), without a due date, or due at or after 24:00 of the end date;
  overdue otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Channel, Dossier, Status

RECEIVED_ONLINE = "received_online"
RECEIVED_DIRECT = "received_direct"
CARRIED_OVER = "carried_over"
RECEIVED_TOTAL = "received_total"
RESOLVED_EARLY = "resolved_early"
RESOLVED_ON_TIME = "resolved_on_time"
RESOLVED_LATE = "resolved_late"
RESOLVED_TOTAL = "resolved_total"
IN_PROGRESS_WITHIN = "in_progress_within"
IN_PROGRESS_OVERDUE = "in_progress_overdue"
IN_PROGRESS_TOTAL = "in_progress_total"
ON_TIME_RATE = "on_time_rate"

# The II.06a columns in the form's order (the 11 counts, then the rate).
TTHC_RESULTS_COLUMNS: tuple[str, ...] = (
    RECEIVED_ONLINE,
    RECEIVED_DIRECT,
    CARRIED_OVER,
    RECEIVED_TOTAL,
    RESOLVED_EARLY,
    RESOLVED_ON_TIME,
    RESOLVED_LATE,
    RESOLVED_TOTAL,
    IN_PROGRESS_WITHIN,
    IN_PROGRESS_OVERDUE,
    IN_PROGRESS_TOTAL,
    ON_TIME_RATE,
)
COUNT_COLUMNS: tuple[str, ...] = TTHC_RESULTS_COLUMNS[:-1]

_FINISHED = frozenset({Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN})

TthcResults = dict[str, int | Decimal | None]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one dossier counts: its reception column and its outcome column (None = nowhere)."""

    reception: str | None
    outcome: str | None


NOWHERE = Placement(None, None)


def period_instants(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    """00:00 of the start date and 24:00 of the end date (= 00:00 the day after), local time."""
    start = datetime.combine(period_start, time(0), tzinfo=LOCAL_TIMEZONE)
    end = datetime.combine(period_end + timedelta(days=1), time(0), tzinfo=LOCAL_TIMEZONE)
    return start, end


def _aware(moment: datetime) -> datetime:
    # A time written without an offset means local time (UTC+7), as the vendors' quirk intends.
    return moment.replace(tzinfo=LOCAL_TIMEZONE) if moment.tzinfo is None else moment


def _local_day(moment: datetime) -> date:
    return _aware(moment).astimezone(LOCAL_TIMEZONE).date()


def place_dossier(dossier: Dossier, period_start: datetime, period_end: datetime) -> Placement:
    """The columns one dossier counts in for the period [period_start, period_end) (aware instants)."""
    if dossier.deleted or dossier.status == Status.CANCELLED:
        return NOWHERE
    received = _aware(dossier.received_at)
    if received >= period_end:
        return NOWHERE
    finished = _aware(dossier.finished_at) if dossier.status in _FINISHED and dossier.finished_at is not None else None
    if finished is not None and finished < period_start:
        return NOWHERE  # finished before the period: never open in it
    if received < period_start:
        reception = CARRIED_OVER
    elif dossier.channel == Channel.ONLINE:
        reception = RECEIVED_ONLINE
    else:
        reception = RECEIVED_DIRECT
    due = _aware(dossier.due_at) if dossier.due_at is not None else None
    if finished is not None and finished < period_end:
        if dossier.status in (Status.RETURNED, Status.WITHDRAWN) or due is None:
            outcome = RESOLVED_ON_TIME
        elif finished > due:
            outcome = RESOLVED_LATE
        elif _local_day(finished) < _local_day(due):
            outcome = RESOLVED_EARLY
        else:
            outcome = RESOLVED_ON_TIME
    elif dossier.status == Status.SUPPLEMENT_REQUESTED or due is None or due >= period_end:
        outcome = IN_PROGRESS_WITHIN
    else:
        outcome = IN_PROGRESS_OVERDUE
    return Placement(reception, outcome)


def on_time_rate(early_or_on_time: int, resolved_total: int) -> Decimal | None:
    """(early + on time) / resolved × 100, two decimals rounded half up; None when nothing was resolved."""
    if resolved_total == 0:
        return None
    # Integer arithmetic: hundredths of a per cent, rounded half up, with no float in between.
    hundredths = (early_or_on_time * 10_000 * 2 + resolved_total) // (2 * resolved_total)
    return Decimal(hundredths).scaleb(-2)


def _empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_COLUMNS, 0)


def _finish(counts: dict[str, int]) -> TthcResults:
    counts[RECEIVED_TOTAL] = counts[RECEIVED_ONLINE] + counts[RECEIVED_DIRECT] + counts[CARRIED_OVER]
    counts[RESOLVED_TOTAL] = counts[RESOLVED_EARLY] + counts[RESOLVED_ON_TIME] + counts[RESOLVED_LATE]
    counts[IN_PROGRESS_TOTAL] = counts[IN_PROGRESS_WITHIN] + counts[IN_PROGRESS_OVERDUE]
    result: TthcResults = {column: counts[column] for column in COUNT_COLUMNS}
    result[ON_TIME_RATE] = on_time_rate(counts[RESOLVED_EARLY] + counts[RESOLVED_ON_TIME], counts[RESOLVED_TOTAL])
    return result


def tthc_results_total(dossiers: Iterable[Dossier], period_start: date, period_end: date) -> TthcResults:
    """The report total of II.06a over current dossier states, for the inclusive local dates given."""
    start, end = period_instants(period_start, period_end)
    counts = _empty_counts()
    for dossier in dossiers:
        placement = place_dossier(dossier, start, end)
        if placement.reception is not None:
            counts[placement.reception] += 1
        if placement.outcome is not None:
            counts[placement.outcome] += 1
    return _finish(counts)


def tthc_results_rows(
    dossiers: Iterable[Dossier], period_start: date, period_end: date
) -> dict[tuple[str, str], TthcResults]:
    """II.06a rows keyed by (agency code, field code); rows where nothing counts are left out."""
    start, end = period_instants(period_start, period_end)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for dossier in dossiers:
        placement = place_dossier(dossier, start, end)
        if placement.reception is None and placement.outcome is None:
            continue
        key = (dossier.agency_code, dossier.field_code)
        counts = rows.get(key)
        if counts is None:
            counts = rows[key] = _empty_counts()
        if placement.reception is not None:
            counts[placement.reception] += 1
        if placement.outcome is not None:
            counts[placement.outcome] += 1
    return {key: _finish(counts) for key, counts in sorted(rows.items())}
