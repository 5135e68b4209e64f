"""Deterministic data for the one-stop-shop simulator: agencies, fields, procedures, dossier histories.

`generate` lays out `volume` dossiers around a period with a realistic mix; `generate_calibrated`
lays them out so that the period's II.06a totals are exactly the given targets (Lâm Đồng's 2019
report by default), edge cases included, and checks the result with the independent per-dossier
reference in `expected_results`. The same seed always gives the same data.

How the layout works: every dossier is first given an outcome for the period (resolved early, late,
open and overdue, cancelled, ...) and an arrival (carried over, or received in the period by some
channel), in exact counts; then times consistent with that outcome are drawn (vectorised with
numpy), and only then procedures, codes, applicants and version histories are attached.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from baocao.simulators.onestop import names
from baocao.simulators.onestop.expected_results import (
    CARRIED_OVER,
    IN_PROGRESS_OVERDUE,
    RECEIVED_ONLINE,
    RECEIVED_TOTAL,
    RESOLVED_EARLY,
    RESOLVED_LATE,
    RESOLVED_ON_TIME,
    RESOLVED_TOTAL,
    TthcResults,
    on_time_rate,
    tthc_results_rows,
    tthc_results_total,
)
from baocao.simulators.onestop.records import (
    LOCAL_TIMEZONE,
    Agency,
    Applicant,
    Channel,
    Dossier,
    DossierHistory,
    DossierState,
    Field,
    Level,
    OnlineType,
    Procedure,
    Status,
)

Times = npt.NDArray[np.int64]

# Viet Nam has kept UTC+7 without daylight saving since 1975, so local days are fixed 86,400-second
# slices shifted by seven hours; the layout works in epoch seconds for speed.
UTC_OFFSET_SECONDS = 7 * 3600
DAY_SECONDS = 86_400
NO_TIME = -1
DEFAULT_AGENCY_COUNT = 300
DEFAULT_PROVINCE_NAME = "Lâm Đồng"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Edge cases sit up to 20 days inside the period's ends; shorter periods get none.
_SHORTEST_PERIOD_WITH_EDGE_CASES_DAYS = 45

CHANNELS: tuple[Channel, ...] = (Channel.ONLINE, Channel.DIRECT, Channel.POSTAL)
STATUSES: tuple[Status, ...] = tuple(Status)
_ONLINE, _DIRECT, _POSTAL = 0, 1, 2
_STATUS_INDEX = {status: index for index, status in enumerate(STATUSES)}


class CalibrationError(RuntimeError):
    """The calibrated layout does not reproduce its targets: a bug in the generator, never in data."""


class _Outcome(IntEnum):
    """Where a dossier ends up for the period; the last four count nowhere."""

    RESOLVED_EARLY = 0
    RESOLVED_ON_DUE_DAY = 1
    RESOLVED_WITHOUT_DUE_DATE = 2
    RETURNED = 3
    WITHDRAWN = 4
    RESOLVED_LATE = 5
    OPEN_WITHIN_DUE = 6
    OPEN_AWAITING_SUPPLEMENT = 7
    OPEN_WITHOUT_DUE_DATE = 8
    OPEN_OVERDUE = 9
    CANCELLED = 10
    DELETED = 11
    FINISHED_BEFORE_PERIOD = 12
    RECEIVED_AFTER_PERIOD = 13


class _Arrival(IntEnum):
    """How a dossier enters the period: carried over, or received in it by a channel."""

    CARRIED_OVER = 0
    ONLINE = 1
    DIRECT = 2
    POSTAL = 3


_Plan = dict[tuple[_Outcome, _Arrival], int]
_NOISE_OUTCOMES = (
    _Outcome.CANCELLED,
    _Outcome.DELETED,
    _Outcome.FINISHED_BEFORE_PERIOD,
    _Outcome.RECEIVED_AFTER_PERIOD,
)
_OPEN_AT_END = (
    _Outcome.OPEN_WITHIN_DUE,
    _Outcome.OPEN_AWAITING_SUPPLEMENT,
    _Outcome.OPEN_WITHOUT_DUE_DATE,
    _Outcome.OPEN_OVERDUE,
)
# What a deleted dossier looked like before deletion.
_DELETED_UNDERLYING = (
    _Outcome.RESOLVED_EARLY,
    _Outcome.RESOLVED_ON_DUE_DAY,
    _Outcome.RESOLVED_LATE,
    _Outcome.RETURNED,
    _Outcome.OPEN_WITHIN_DUE,
    _Outcome.OPEN_OVERDUE,
)


# ---------------------------------------------------------------- public types


@dataclass(frozen=True)
class Dataset:
    """Everything the simulated system holds; dossiers sorted by reception time, then code."""

    agencies: tuple[Agency, ...] = field(repr=False)
    fields: tuple[Field, ...] = field(repr=False)
    procedures: tuple[Procedure, ...] = field(repr=False)
    dossiers: tuple[DossierHistory, ...] = field(repr=False)
    province_suffix: str
    period_start: date
    period_end: date
    seed: int

    def current_dossiers(self, as_of: datetime | None = None) -> list[Dossier]:
        """Each dossier as it stood at `as_of` (latest version with updated_at <= as_of); all
        versions when None. Deleted dossiers are included with `deleted` True; dossiers not yet
        received at `as_of` are left out."""
        if as_of is None:
            return [history.latest() for history in self.dossiers]
        current = (history.as_of(as_of) for history in self.dossiers)
        return [dossier for dossier in current if dossier is not None]

    def versions(self) -> Iterator[Dossier]:
        """Every version of every dossier, dossier by dossier, oldest version first."""
        for history in self.dossiers:
            yield from history.versions()

    @property
    def version_count(self) -> int:
        return sum(len(history.states) for history in self.dossiers)

    @property
    def horizon(self) -> datetime:
        """The latest change in the data set: at or after it, every version is visible."""
        return max(history.states[-1].updated_at for history in self.dossiers)


@dataclass(frozen=True)
class CalibrationTargets:
    """Published II.06a totals to reproduce; the optional splits are chosen by the generator if None."""

    received_total: int
    resolved_total: int
    resolved_early_or_on_time: int
    resolved_late: int
    carried_over: int | None = None
    received_online: int | None = None
    resolved_early: int | None = None
    in_progress_overdue: int | None = None

    def __post_init__(self) -> None:
        if self.resolved_early_or_on_time + self.resolved_late != self.resolved_total:
            raise ValueError("resolved_total must equal resolved_early_or_on_time + resolved_late")
        if min(self.received_total, self.resolved_early_or_on_time, self.resolved_late) < 0:
            raise ValueError("targets must not be negative")
        if self.resolved_total > self.received_total:
            raise ValueError("more dossiers resolved than received: received = resolved + in progress")
        if self.carried_over is not None and not 0 <= self.carried_over <= self.received_total:
            raise ValueError("carried_over must be between 0 and received_total")
        received_in_period = self.received_total - (self.carried_over or 0)
        if self.received_online is not None and not 0 <= self.received_online <= received_in_period:
            raise ValueError("received_online must be between 0 and the dossiers received in the period")
        if self.resolved_early is not None and not 0 <= self.resolved_early <= self.resolved_early_or_on_time:
            raise ValueError("resolved_early must be between 0 and resolved_early_or_on_time")
        in_progress = self.received_total - self.resolved_total
        if self.in_progress_overdue is not None and not 0 <= self.in_progress_overdue <= in_progress:
            raise ValueError("in_progress_overdue must be between 0 and the dossiers in progress")

    @property
    def on_time_rate(self) -> Decimal | None:
        return on_time_rate(self.resolved_early_or_on_time, self.resolved_total)


@dataclass(frozen=True)
class CalibratedDataset:
    """A data set laid out for one period, with the II.06a figures it was built to produce.

    `expected_total` and `expected_rows` come from `expected_results` applied to the final state of
    every dossier (`dataset.current_dossiers()`): the figures a correct aggregation must reproduce.
    """

    dataset: Dataset
    targets: CalibrationTargets
    period_start: date
    period_end: date
    expected_total: TthcResults
    expected_rows: dict[tuple[str, str], TthcResults] = field(repr=False)


# Lâm Đồng, year 2019 under Decree 09/2019 (D09: 2018-12-15 → 2019-12-14): 491,498 received,
# 475,158 resolved, of which 470,208 early or on time and 4,950 late (98.96 % on time).
LAM_DONG_2019 = CalibrationTargets(
    received_total=491_498,
    resolved_total=475_158,
    resolved_early_or_on_time=470_208,
    resolved_late=4_950,
)
LAM_DONG_2019_PERIOD_START = date(2018, 12, 15)
LAM_DONG_2019_PERIOD_END = date(2019, 12, 14)


# ---------------------------------------------------------------- public functions


def generate(
    seed: int = 7,
    volume: int = 20_000,
    *,
    start: date,
    end: date,
    province_suffix: str = "H99",
    province_name: str = DEFAULT_PROVINCE_NAME,
) -> Dataset:
    """`volume` dossiers around the period [start, end] (inclusive local dates), realistic mix.

    About 96 % of them are received in the period or carried over into it; the rest are
    cancelled, deleted, finished before the period or received after it. Dossiers still open at
    the end partly finish later (up to a few months after `end`), so the histories run past it.
    """
    if volume < 0:
        raise ValueError("volume must not be negative")
    noise = volume * 4 // 100
    received_total = volume - noise
    resolved_total = received_total * 965 // 1000
    late = resolved_total * 12 // 1000
    targets = CalibrationTargets(received_total, resolved_total, resolved_total - late, late)
    return _build(targets, noise, start, end, seed, province_suffix, province_name)


def generate_calibrated(
    targets: CalibrationTargets = LAM_DONG_2019,
    period_start: date = LAM_DONG_2019_PERIOD_START,
    period_end: date = LAM_DONG_2019_PERIOD_END,
    seed: int = 7,
    *,
    province_suffix: str = "H99",
    province_name: str = DEFAULT_PROVINCE_NAME,
) -> CalibratedDataset:
    """Dossiers whose II.06a totals for [period_start, period_end] are exactly `targets`.

    Besides the counted dossiers, about 3 % more count nowhere (cancelled, deleted, finished
    before the period, received after it), and edge cases sit on every boundary the definitions
    draw, so that an aggregation that gets an edge wrong misses the targets.
    Raises CalibrationError if the reference classification disagrees with the layout.
    """
    noise = targets.received_total * 3 // 100
    with _garbage_collector_paused():
        dataset = _build(targets, noise, period_start, period_end, seed, province_suffix, province_name)
        final_states = dataset.current_dossiers()
        expected_total = tthc_results_total(final_states, period_start, period_end)
        expected_rows = tthc_results_rows(final_states, period_start, period_end)
    wanted = {
        RECEIVED_TOTAL: targets.received_total,
        RESOLVED_TOTAL: targets.resolved_total,
        RESOLVED_LATE: targets.resolved_late,
    }
    got = {column: expected_total[column] for column in wanted}
    early_or_on_time = int(expected_total[RESOLVED_EARLY] or 0) + int(expected_total[RESOLVED_ON_TIME] or 0)
    if got != wanted or early_or_on_time != targets.resolved_early_or_on_time:
        raise CalibrationError(f"calibrated layout gives {expected_total}, wanted {targets}")
    for column, value in (
        (CARRIED_OVER, targets.carried_over),
        (RECEIVED_ONLINE, targets.received_online),
        (RESOLVED_EARLY, targets.resolved_early),
        (IN_PROGRESS_OVERDUE, targets.in_progress_overdue),
    ):
        if value is not None and expected_total[column] != value:
            raise CalibrationError(f"calibrated layout gives {column} = {expected_total[column]}, wanted {value}")
    return CalibratedDataset(dataset, targets, period_start, period_end, expected_total, expected_rows)


def write_registry_csv(dataset: Dataset, path: Path | str) -> None:
    """The agency registry the pipeline reads: UTF-8 CSV with header `code,name,level`."""
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "name", "level"])
        for agency in dataset.agencies:
            writer.writerow([agency.code, agency.name, agency.level.value])


def local_instant(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware local time (UTC+7) on `day`."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=LOCAL_TIMEZONE)


@contextlib.contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of tuples.

    The records hold no reference cycles, but each allocation burst triggers collections that scan
    the whole growing heap: for a calibrated year that doubles the generation time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class _Catalogue:
    agencies: tuple[Agency, ...]
    fields: tuple[Field, ...]
    procedures: tuple[Procedure, ...]
    # Per procedure offer (one row of `procedures`): agency index, dossier weight, capabilities.
    offer_agency: npt.NDArray[np.int64]
    offer_weight: npt.NDArray[np.float64]
    offer_has_time_limit: npt.NDArray[np.bool_]
    offer_online: npt.NDArray[np.bool_]
    # The administrative unit applicants of an agency live in ("xã Tà Nung"), and whether it is urban.
    commune_units: tuple[str, ...]
    commune_urban: tuple[bool, ...]
    agency_commune: npt.NDArray[np.int64]


def _commune_names(count: int, chooser: random.Random) -> list[str]:
    result = list(names.COMMUNE_NAMES[:count])
    composed = [
        f"{first} {second}"
        for first in names.SYLLABLES_FIRST
        for second in names.SYLLABLES_SECOND
        if first != second and f"{first} {second}" not in names.COMMUNE_NAMES
    ]
    chooser.shuffle(composed)
    result.extend(composed[: max(0, count - len(result))])
    if len(result) < count:
        raise ValueError(f"cannot name {count} communes")
    return result


def _national_codes(chooser: random.Random) -> Iterator[str]:
    """Unique national procedure codes like `1.001234` (level prefix 1 or 2, six digits)."""
    number = 100
    while True:
        number += chooser.randint(1, 40)
        yield f"{chooser.choice((1, 1, 2))}.{number:06d}"


def _procedure_entries(field_code: str, generic_count: int, chooser: random.Random) -> list[names.ProcedureEntry]:
    field_name = next(entry.name for entry in names.FIELDS if entry.code == field_code)
    lowered = field_name[0].lower() + field_name[1:]
    entries = list(names.NAMED_PROCEDURES.get(field_code, ()))
    for action, limit in chooser.sample(names.GENERIC_ACTIONS, generic_count):
        entries.append(names.ProcedureEntry(f"{action} thuộc lĩnh vực {lowered}", limit, chooser.uniform(0.1, 1.0)))
    return entries


def _online_type(limit: int | None, chooser: random.Random) -> OnlineType:
    if limit is None:
        # Notices without a time limit are the easiest to put fully online; provinces did so first.
        return OnlineType.FULL
    draw = chooser.random()
    return OnlineType.FULL if draw < 0.30 else OnlineType.PARTIAL if draw < 0.75 else OnlineType.NONE


def _build_catalogue(seed: int, province_suffix: str, province_name: str) -> _Catalogue:
    chooser = random.Random(f"onestop-catalogue-{seed}")
    field_weight = {entry.code: entry.weight for entry in names.FIELDS}
    fields = tuple(Field(entry.code, entry.name) for entry in names.FIELDS)
    codes = _national_codes(chooser)

    agencies: list[Agency] = []
    procedures: list[Procedure] = []
    offer_agency: list[int] = []
    offer_weight: list[float] = []

    def offer(
        agency_index: int,
        entry: names.ProcedureEntry,
        code: str,
        field_code: str,
        online: OnlineType,
        fee: bool,
        share: float,
    ) -> None:
        agency = agencies[agency_index]
        procedures.append(
            Procedure(
                code=code,
                name=entry.name,
                field_code=field_code,
                agency_code=agency.code,
                online_type=online,
                fee_required=fee,
                online_payment=fee and online is not OnlineType.NONE and chooser.random() < 0.7,
                published_on_time=chooser.random() < 0.95,
                publication_updated_on_time=chooser.random() < 0.9,
                content_complete=chooser.random() < 0.93,
                time_limit_days=entry.time_limit_days,
            )
        )
        offer_agency.append(agency_index)
        offer_weight.append(share)

    # Departments: about 30 % of all dossiers, shared by department weight, then field, then procedure.
    department_total = sum(entry.weight for entry in names.DEPARTMENTS)
    for number, department in enumerate(names.DEPARTMENTS, start=1):
        agencies.append(
            Agency(
                f"000.00.{number:02d}.{province_suffix}",
                department.name,
                Level.PROVINCE,
                f"{province_suffix}.{number:02d}",
            )
        )
        index = len(agencies) - 1
        fields_total = sum(field_weight[code] for code in department.field_codes)
        for field_code in department.field_codes:
            entries = _procedure_entries(field_code, chooser.randint(2, 5), chooser)
            entries_total = sum(entry.weight for entry in entries)
            for entry in entries:
                share = (
                    0.3
                    * department.weight
                    / department_total
                    * field_weight[field_code]
                    / fields_total
                    * entry.weight
                    / entries_total
                )
                offer(
                    index,
                    entry,
                    next(codes),
                    field_code,
                    _online_type(entry.time_limit_days, chooser),
                    chooser.random() < 0.45,
                    share,
                )

    # Communes share one catalogue (same national codes), each offering all of its named procedures
    # and most of the generic ones.
    commune_catalogue: list[tuple[str, names.ProcedureEntry, str, OnlineType, bool, float]] = []
    commune_fields_total = sum(field_weight[code] for code in names.COMMUNE_FIELD_CODES)
    for field_code in names.COMMUNE_FIELD_CODES:
        entries = _procedure_entries(field_code, chooser.randint(1, 2), chooser)
        entries_total = sum(entry.weight for entry in entries)
        for entry in entries:
            share = field_weight[field_code] / commune_fields_total * entry.weight / entries_total
            commune_catalogue.append(
                (
                    field_code,
                    entry,
                    next(codes),
                    _online_type(entry.time_limit_days, chooser),
                    chooser.random() < 0.3,
                    share,
                )
            )
    commune_count = DEFAULT_AGENCY_COUNT - len(names.DEPARTMENTS)
    commune_units: list[str] = []
    commune_urban: list[bool] = []
    commune_sizes = [chooser.lognormvariate(0.0, 0.6) for _ in range(commune_count)]
    size_total = sum(commune_sizes)
    agency_commune: list[int] = [-1] * len(agencies)
    named_procedures = {entry.name for entries in names.NAMED_PROCEDURES.values() for entry in entries}
    for position, name in enumerate(_commune_names(commune_count, chooser)):
        draw = chooser.random()
        kind = "phường" if draw < 0.12 else "thị trấn" if draw < 0.20 else "xã"
        group, number = divmod(position, 20)
        agencies.append(
            Agency(
                f"000.{group + 1:02d}.{number + 1:02d}.{province_suffix}",
                f"UBND {kind} {name}",
                Level.COMMUNE,
                f"{province_suffix}.{group + 1:02d}.{number + 1:02d}",
            )
        )
        commune_units.append(f"{kind} {name}")
        commune_urban.append(kind != "xã")
        agency_commune.append(position)
        index = len(agencies) - 1
        for field_code, entry, code, online, fee, share in commune_catalogue:
            if entry.name in named_procedures or chooser.random() < 0.8:
                offer(index, entry, code, field_code, online, fee, 0.7 * commune_sizes[position] / size_total * share)

    # Departments' applicants live anywhere in the province.
    agency_commune = [chooser.randrange(commune_count) if value < 0 else value for value in agency_commune]
    return _Catalogue(
        agencies=tuple(agencies),
        fields=fields,
        procedures=tuple(procedures),
        offer_agency=np.array(offer_agency, dtype=np.int64),
        offer_weight=np.array(offer_weight, dtype=np.float64),
        offer_has_time_limit=np.array([p.time_limit_days is not None for p in procedures], dtype=np.bool_),
        offer_online=np.array([p.online_type is not OnlineType.NONE for p in procedures], dtype=np.bool_),
        commune_units=tuple(f"{unit}, tỉnh {province_name}" for unit in commune_units),
        commune_urban=tuple(commune_urban),
        agency_commune=np.array(agency_commune, dtype=np.int64),
    )


# ---------------------------------------------------------------- layout plan


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to integer `weights`, largest remainders first (exact sum)."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    shares = [total * weight // weight_sum for weight in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for index in remainders[: total - sum(shares)]:
        shares[index] += 1
    return shares


def _plan(targets: CalibrationTargets, noise: int) -> _Plan:
    """Exact counts per (outcome, arrival) reproducing the targets, plus `noise` that counts nowhere."""
    good = targets.resolved_early_or_on_time
    early = targets.resolved_early if targets.resolved_early is not None else good * 62 // 100
    on_time = good - early
    returned, withdrawn, without_due = on_time * 3 // 100, on_time // 100, on_time * 5 // 100
    in_progress = targets.received_total - targets.resolved_total
    overdue = targets.in_progress_overdue if targets.in_progress_overdue is not None else in_progress * 12 // 100
    within = in_progress - overdue
    supplement, open_without_due = within * 10 // 100, within * 4 // 100
    outcome_counts = {
        _Outcome.RESOLVED_EARLY: early,
        _Outcome.RESOLVED_ON_DUE_DAY: on_time - returned - withdrawn - without_due,
        _Outcome.RESOLVED_WITHOUT_DUE_DATE: without_due,
        _Outcome.RETURNED: returned,
        _Outcome.WITHDRAWN: withdrawn,
        _Outcome.RESOLVED_LATE: targets.resolved_late,
        _Outcome.OPEN_WITHIN_DUE: within - supplement - open_without_due,
        _Outcome.OPEN_AWAITING_SUPPLEMENT: supplement,
        _Outcome.OPEN_WITHOUT_DUE_DATE: open_without_due,
        _Outcome.OPEN_OVERDUE: overdue,
    }
    total = targets.received_total
    carried = targets.carried_over if targets.carried_over is not None else total * 3 // 100
    online = targets.received_online if targets.received_online is not None else (total - carried) * 15 // 100
    postal = (total - carried - online) * 3 // 100
    outcomes = list(outcome_counts)
    remaining = [outcome_counts[outcome] for outcome in outcomes]
    plan: _Plan = {}
    for arrival, count in ((_Arrival.CARRIED_OVER, carried), (_Arrival.ONLINE, online), (_Arrival.POSTAL, postal)):
        shares = _apportion(count, remaining)
        for position, outcome in enumerate(outcomes):
            plan[(outcome, arrival)] = shares[position]
            remaining[position] -= shares[position]
    for position, outcome in enumerate(outcomes):
        plan[(outcome, _Arrival.DIRECT)] = remaining[position]
    for outcome, count in zip(_NOISE_OUTCOMES, _apportion(noise, [35, 20, 25, 20]), strict=True):
        for arrival, share in zip(
            (_Arrival.ONLINE, _Arrival.DIRECT, _Arrival.POSTAL), _apportion(count, [15, 82, 3]), strict=True
        ):
            plan[(outcome, arrival)] = share
    return plan


# ---------------------------------------------------------------- times


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _local_day(seconds: Times) -> Times:
    return (seconds + UTC_OFFSET_SECONDS) // DAY_SECONDS


def _midnight(day: Times | int) -> Any:
    return day * DAY_SECONDS - UTC_OFFSET_SECONDS


@dataclass
class _Rows:
    """Laid-out dossiers as parallel arrays (times in epoch seconds, NO_TIME for none)."""

    outcome: list[Times] = field(default_factory=list)
    carried: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    channel: list[Times] = field(default_factory=list)
    received: list[Times] = field(default_factory=list)
    due: list[Times] = field(default_factory=list)
    finished: list[Times] = field(default_factory=list)
    status: list[Times] = field(default_factory=list)
    deleted: list[npt.NDArray[np.bool_]] = field(default_factory=list)

    def add(
        self,
        outcome: int,
        carried: bool,
        channel: Times,
        received: Times,
        due: Times,
        finished: Times,
        status: Times,
        deleted: bool,
    ) -> None:
        size = len(received)
        self.outcome.append(np.full(size, outcome, dtype=np.int64))
        self.carried.append(np.full(size, carried, dtype=np.bool_))
        self.channel.append(channel.astype(np.int64))
        self.received.append(received.astype(np.int64))
        self.due.append(due.astype(np.int64))
        self.finished.append(finished.astype(np.int64))
        self.status.append(status.astype(np.int64))
        self.deleted.append(np.full(size, deleted, dtype=np.bool_))

    def joined(self, name: str) -> Any:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _Timeline:
    """Draws times for a group of dossiers with one outcome, inside period [start, end) (epoch s)."""

    def __init__(self, rng: np.random.Generator, start: int, end: int) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.start_day = (start + UTC_OFFSET_SECONDS) // DAY_SECONDS
        self.end_day = (end + UTC_OFFSET_SECONDS) // DAY_SECONDS  # the day after the period's last day

    def office_time_of_day(self, size: int) -> Times:
        # One-stop desks work 07:30–11:30 and 13:30–17:00.
        morning = self.rng.integers(27_000, 41_400, size)
        afternoon = self.rng.integers(48_600, 61_200, size)
        return np.where(self.rng.random(size) < 0.55, morning, afternoon)

    def time_of_day(self, channel: Times) -> Times:
        size = len(channel)
        # Online dossiers also arrive at night; stopping at 22:00 keeps two hours before any day's end.
        anytime = self.rng.integers(0, 22 * 3600, size)
        online = np.where(self.rng.random(size) < 0.7, self.office_time_of_day(size), anytime)
        return np.where(channel == _ONLINE, online, self.office_time_of_day(size))

    def due_time_of_day(self, size: int) -> Times:
        hours = np.array([8, 10, 11, 14, 16, 16.5, 17]) * 3600
        return hours.astype(np.int64)[self.rng.integers(0, len(hours), size)]

    def received(self, channel: Times, carried: bool, still_open: bool) -> Times:
        size = len(channel)
        if carried:
            # Mostly recent, a few months old at most: older ones have long been finished.
            age = np.minimum(self.rng.geometric(1 / 15, size), 180)
            day = self.start_day - age
        elif still_open:
            # Dossiers still open at the end of the period mostly came in during its last weeks.
            age = np.minimum(self.rng.exponential(20, size).astype(np.int64), self.end_day - self.start_day - 1)
            day = self.end_day - 1 - age
        else:
            day = self.rng.integers(self.start_day, self.end_day, size)
        result: Times = _midnight(day) + self.time_of_day(channel)
        return result

    def finished_in_period(self, received: Times) -> Times:
        size = len(received)
        earliest = np.maximum(received, self.start) + 300
        span = self.end - 1 - earliest
        duration = self.rng.exponential(4 * DAY_SECONDS, size).astype(np.int64)
        fallback = (self.rng.random(size) * span).astype(np.int64)
        drawn = earliest + np.where(duration <= span, duration, fallback)
        return self.in_office_hours(drawn, earliest, self.end - 1)

    def in_office_hours(self, drawn: Times, low: Times | int, high: Times | int) -> Times:
        """`drawn` moved to office hours on its day when that stays within [low, high]."""
        office = _midnight(_local_day(drawn)) + self.office_time_of_day(len(drawn))
        result: Times = np.where((office >= low) & (office <= high), office, drawn)
        return result

    def due_days_after(self, day: Times, low: int, high: int) -> Times:
        result: Times = _midnight(day + self.rng.integers(low, high + 1, len(day))) + self.due_time_of_day(len(day))
        return result

    def due_before_end(self, received: Times) -> Times:
        """A due time after reception but before the end of the period (received <= end - 2 h)."""
        size = len(received)
        earliest = received + 3600
        span = self.end - 1 - earliest
        duration = self.rng.exponential(10 * DAY_SECONDS, size).astype(np.int64)
        fallback = (self.rng.random(size) * span).astype(np.int64)
        drawn = earliest + np.where(duration <= span, duration, fallback)
        # Due times are set at usual hours (08:00 … 17:00) when the day allows it.
        usual = _midnight(_local_day(drawn)) + self.due_time_of_day(size)
        result: Times = np.where((usual >= earliest) & (usual < self.end), usual, drawn)
        return result

    def due_from_end(self, size: int) -> Times:
        """A due time at or after 24:00 of the period's last day."""
        days = self.end_day + np.minimum(self.rng.geometric(0.1, size) - 1, 90)
        result: Times = _midnight(days) + self.due_time_of_day(size)
        return result

    def statuses(self, size: int, choices: Sequence[Status], weights: Sequence[float]) -> Times:
        indexes = np.array([_STATUS_INDEX[status] for status in choices], dtype=np.int64)
        probabilities = np.array(weights) / sum(weights)
        result: Times = indexes[self.rng.choice(len(choices), size, p=probabilities)]
        return result

    def open_at_end(self, size: int) -> tuple[Times, Times]:
        """Finishing time and status of dossiers open at the end: half finish later, half stay open."""
        later = self.rng.random(size) < 0.5
        drawn = self.end + self.rng.exponential(12 * DAY_SECONDS, size).astype(np.int64)
        finished = np.where(later, self.in_office_hours(drawn, self.end, drawn + DAY_SECONDS), NO_TIME)
        done = self.statuses(size, (Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN), (85, 10, 5))
        still_open = self.statuses(size, (Status.PROCESSING, Status.RECEIVED), (88, 12))
        return finished, np.where(later, done, still_open)

    def lay_out(self, outcome: _Outcome, channel: Times, carried: bool) -> tuple[Times, Times, Times, Times]:
        """(received, due, finished, status) for `len(channel)` dossiers ending up in `outcome`."""
        size = len(channel)
        none = np.full(size, NO_TIME, dtype=np.int64)
        received = self.received(channel, carried, outcome in _OPEN_AT_END)
        resolved = np.full(size, _STATUS_INDEX[Status.RESOLVED], dtype=np.int64)
        if outcome is _Outcome.RESOLVED_EARLY:
            finished = self.finished_in_period(received)
            days = np.minimum(self.rng.geometric(0.25, size), 60)
            due = _midnight(_local_day(finished) + days) + self.due_time_of_day(size)
            return received, due, finished, resolved
        if outcome is _Outcome.RESOLVED_ON_DUE_DAY:
            finished = self.finished_in_period(received)
            last_second_of_day = _midnight(_local_day(finished) + 1) - 1
            half_hour_after = -(-finished // 1800) * 1800 + self.rng.integers(0, 8, size) * 1800
            due = np.maximum(np.minimum(half_hour_after, last_second_of_day), finished)
            return received, due, finished, resolved
        if outcome is _Outcome.RESOLVED_WITHOUT_DUE_DATE:
            return received, none, self.finished_in_period(received), resolved
        if outcome in (_Outcome.RETURNED, _Outcome.WITHDRAWN):
            final = Status.RETURNED if outcome is _Outcome.RETURNED else Status.WITHDRAWN
            due = self.due_days_after(_local_day(received), 1, 30)
            finished = self.finished_in_period(received)
            return received, due, finished, np.full(size, _STATUS_INDEX[final], dtype=np.int64)
        if outcome is _Outcome.RESOLVED_LATE:
            finished = self.finished_in_period(received)
            time_of_day = (finished + UTC_OFFSET_SECONDS) % DAY_SECONDS
            # A third are late by hours on the due day itself, the rest by days.
            same_day = 1 + (self.rng.random(size) * np.maximum(time_of_day - 1, 0)).astype(np.int64)
            by_days = self.rng.integers(1, 15, size) * DAY_SECONDS + self.rng.integers(0, DAY_SECONDS, size)
            lateness = np.where(self.rng.random(size) < 0.35, same_day, by_days)
            lateness = np.clip(lateness, 1, finished - received - 60)
            return received, finished - lateness, finished, resolved
        if outcome is _Outcome.OPEN_WITHIN_DUE:
            finished, status = self.open_at_end(size)
            return received, self.due_from_end(size), finished, status
        if outcome is _Outcome.OPEN_OVERDUE:
            finished, status = self.open_at_end(size)
            return received, self.due_before_end(received), finished, status
        if outcome is _Outcome.OPEN_WITHOUT_DUE_DATE:
            finished, status = self.open_at_end(size)
            return received, none, finished, status
        if outcome is _Outcome.OPEN_AWAITING_SUPPLEMENT:
            # Most are past their due time: awaiting the applicant stops the clock.
            due = np.where(self.rng.random(size) < 0.6, self.due_before_end(received), self.due_from_end(size))
            status = np.full(size, _STATUS_INDEX[Status.SUPPLEMENT_REQUESTED], dtype=np.int64)
            return received, due, none, status
        if outcome is _Outcome.CANCELLED:
            due = self.due_days_after(_local_day(received), 1, 20)
            cancelled_at = received + 600 + self.rng.exponential(2 * DAY_SECONDS, size).astype(np.int64)
            finished = np.where(self.rng.random(size) < 0.7, cancelled_at, NO_TIME)
            return received, due, finished, np.full(size, _STATUS_INDEX[Status.CANCELLED], dtype=np.int64)
        if outcome is _Outcome.FINISHED_BEFORE_PERIOD:
            day = self.start_day - self.rng.integers(3, 90, size)
            received = _midnight(day) + self.time_of_day(channel)
            due = self.due_days_after(day, 1, 20)
            finished = received + 300 + (self.rng.random(size) * (self.start - 1 - received - 300)).astype(np.int64)
            status = self.statuses(size, (Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN), (90, 7, 3))
            return received, due, finished, status
        if outcome is _Outcome.RECEIVED_AFTER_PERIOD:
            day = self.end_day + self.rng.integers(0, 20, size)
            received = _midnight(day) + self.time_of_day(channel)
            due = self.due_days_after(day, 1, 20)
            later = self.rng.random(size) < 0.6
            finished = np.where(
                later, received + 300 + self.rng.exponential(3 * DAY_SECONDS, size).astype(np.int64), NO_TIME
            )
            status = np.where(
                later, _STATUS_INDEX[Status.RESOLVED], self.statuses(size, (Status.PROCESSING, Status.RECEIVED), (7, 3))
            )
            return received, due, finished, status
        raise ValueError(f"no timeline for {outcome!r}")


@dataclass(frozen=True)
class _EdgeCase:
    outcome: _Outcome
    arrival: _Arrival
    received: datetime
    due: datetime | None
    finished: datetime | None
    status: Status


def _edge_cases(period_start: date, period_end: date) -> list[_EdgeCase]:
    """Dossiers on the boundaries the II.06a definitions draw; each says where it must count."""
    if (period_end - period_start).days + 1 < _SHORTEST_PERIOD_WITH_EDGE_CASES_DAYS:
        return []
    s, e = period_start, period_end
    middle = s + timedelta(days=(e - s).days // 2)
    day = timedelta(days=1)
    at = local_instant
    outcome, arrival = _Outcome, _Arrival
    return [
        # Received the last second before the period and still open at its end: carried over, overdue.
        _EdgeCase(
            outcome.OPEN_OVERDUE,
            arrival.CARRIED_OVER,
            at(s - day, 23, 59, 59),
            at(s + 10 * day, 17),
            None,
            Status.PROCESSING,
        ),
        # Finished at 00:00:00 of the start date: still open at the start, so carried over and resolved.
        _EdgeCase(
            outcome.RESOLVED_EARLY, arrival.CARRIED_OVER, at(s - day, 16), at(s + 2 * day, 17), at(s), Status.RESOLVED
        ),
        # Finished one second before the period: never open in it, counts nowhere.
        _EdgeCase(
            outcome.FINISHED_BEFORE_PERIOD,
            arrival.DIRECT,
            at(s - 3 * day, 9),
            at(s + 2 * day, 17),
            at(s - day, 23, 59, 59),
            Status.RESOLVED,
        ),
        _EdgeCase(
            outcome.FINISHED_BEFORE_PERIOD,
            arrival.DIRECT,
            at(s - 10 * day, 9),
            at(s - 3 * day, 17),
            at(s - day, 23, 59, 59),
            Status.RETURNED,
        ),
        # Received at 00:00:00 of the start date: received in the period.
        _EdgeCase(outcome.RESOLVED_EARLY, arrival.ONLINE, at(s), at(s + 3 * day, 17), at(s + day, 9), Status.RESOLVED),
        # Received 06:59 local on the start date (the day before in UTC): in the period; resolved at
        # 06:30 local on the due day (the day before in UTC): on time, not early.
        _EdgeCase(
            outcome.RESOLVED_ON_DUE_DAY,
            arrival.ONLINE,
            at(s, 6, 59),
            at(s + 5 * day, 17),
            at(s + 5 * day, 6, 30),
            Status.RESOLVED,
        ),
        # A later hour of the due day is late; one second after due_at is late; at due_at is on time.
        _EdgeCase(
            outcome.RESOLVED_LATE,
            arrival.DIRECT,
            at(middle - 3 * day, 8),
            at(middle, 17),
            at(middle, 17, 30),
            Status.RESOLVED,
        ),
        _EdgeCase(
            outcome.RESOLVED_LATE,
            arrival.DIRECT,
            at(middle - 3 * day, 9),
            at(middle, 16),
            at(middle, 16, 0, 1),
            Status.RESOLVED,
        ),
        _EdgeCase(
            outcome.RESOLVED_ON_DUE_DAY,
            arrival.DIRECT,
            at(middle - 2 * day, 10),
            at(middle, 16),
            at(middle, 16),
            Status.RESOLVED,
        ),
        # 23:30 the day before the due day (the same day as 08:00 on the due day in UTC): early.
        _EdgeCase(
            outcome.RESOLVED_EARLY,
            arrival.DIRECT,
            at(middle - 4 * day, 10),
            at(middle + day, 8),
            at(middle, 23, 30),
            Status.RESOLVED,
        ),
        # Finished at 23:59:59 of the end date: resolved in the period; 23:59 after a 17:00 due time: late.
        _EdgeCase(
            outcome.RESOLVED_EARLY,
            arrival.DIRECT,
            at(e - day, 9),
            at(e + 2 * day, 17),
            at(e, 23, 59, 59),
            Status.RESOLVED,
        ),
        _EdgeCase(outcome.RESOLVED_LATE, arrival.DIRECT, at(e - 5 * day, 9), at(e, 17), at(e, 23, 59), Status.RESOLVED),
        # Finished at 24:00 of the end date: not in the period, so in progress at its end (due later).
        _EdgeCase(
            outcome.OPEN_WITHIN_DUE,
            arrival.DIRECT,
            at(e - 2 * day, 9),
            at(e + 3 * day, 17),
            at(e + day),
            Status.RESOLVED,
        ),
        # Finished 05:00 local after the end date (still the end date in UTC), due 17:00 on it: overdue.
        _EdgeCase(outcome.OPEN_OVERDUE, arrival.DIRECT, at(e - 6 * day, 9), at(e, 17), at(e + day, 5), Status.RESOLVED),
        # Open: due 23:00 of the end date is overdue; due 24:00 or 02:00 after it (UTC: the end date) within.
        _EdgeCase(outcome.OPEN_OVERDUE, arrival.ONLINE, at(e - 6 * day, 20), at(e, 23), None, Status.PROCESSING),
        _EdgeCase(outcome.OPEN_WITHIN_DUE, arrival.DIRECT, at(e - 6 * day, 9), at(e + day), None, Status.PROCESSING),
        _EdgeCase(outcome.OPEN_WITHIN_DUE, arrival.DIRECT, at(e - 6 * day, 9), at(e + day, 2), None, Status.RECEIVED),
        # Awaiting the applicant's supplements although long past the due time: within.
        _EdgeCase(
            outcome.OPEN_AWAITING_SUPPLEMENT,
            arrival.DIRECT,
            at(middle, 9),
            at(middle + 10 * day, 17),
            None,
            Status.SUPPLEMENT_REQUESTED,
        ),
        # No time limit: within while open, on time when resolved, however long it took.
        _EdgeCase(outcome.OPEN_WITHOUT_DUE_DATE, arrival.DIRECT, at(middle, 10), None, None, Status.PROCESSING),
        _EdgeCase(
            outcome.RESOLVED_WITHOUT_DUE_DATE,
            arrival.ONLINE,
            at(s + 3 * day, 10),
            None,
            at(e - 3 * day, 10),
            Status.RESOLVED,
        ),
        # Returned and withdrawn after the due time still count as on time.
        _EdgeCase(
            outcome.RETURNED,
            arrival.DIRECT,
            at(middle - 20 * day, 9),
            at(middle - 10 * day, 17),
            at(middle, 10),
            Status.RETURNED,
        ),
        _EdgeCase(
            outcome.WITHDRAWN,
            arrival.POSTAL,
            at(middle - 20 * day, 9),
            at(middle - 10 * day, 17),
            at(middle, 11),
            Status.WITHDRAWN,
        ),
        _EdgeCase(
            outcome.RETURNED,
            arrival.CARRIED_OVER,
            at(s - day, 10),
            at(s + 5 * day, 17),
            at(s + day, 9),
            Status.RETURNED,
        ),
        # Received 23:00 the day before the start (the same date in UTC): carried over; resolved late.
        _EdgeCase(
            outcome.RESOLVED_LATE,
            arrival.CARRIED_OVER,
            at(s - day, 23),
            at(s + day, 17),
            at(s + 2 * day, 9),
            Status.RESOLVED,
        ),
        # Cancelled (entered by mistake), with or without a finishing time: count nowhere.
        _EdgeCase(
            outcome.CANCELLED,
            arrival.DIRECT,
            at(middle - 5 * day, 9),
            at(middle - 2 * day, 17),
            at(middle, 9),
            Status.CANCELLED,
        ),
        _EdgeCase(outcome.CANCELLED, arrival.ONLINE, at(middle, 9), at(middle + 5 * day, 17), None, Status.CANCELLED),
        _EdgeCase(outcome.CANCELLED, arrival.DIRECT, at(s - day, 9), at(s + 5 * day, 17), None, Status.CANCELLED),
        # Deleted after being resolved late in the period, or while open and overdue: count nowhere.
        _EdgeCase(
            outcome.DELETED,
            arrival.DIRECT,
            at(middle - 5 * day, 9),
            at(middle - 2 * day, 17),
            at(middle, 9),
            Status.RESOLVED,
        ),
        _EdgeCase(outcome.DELETED, arrival.ONLINE, at(e - 20 * day, 9), at(e - 2 * day, 17), None, Status.PROCESSING),
        # Received at 24:00 of the end date, or 03:00 after it (still the end date in UTC): not in the period.
        _EdgeCase(
            outcome.RECEIVED_AFTER_PERIOD, arrival.ONLINE, at(e + day), at(e + 4 * day, 17), None, Status.RECEIVED
        ),
        _EdgeCase(
            outcome.RECEIVED_AFTER_PERIOD,
            arrival.ONLINE,
            at(e + day, 3),
            at(e + 4 * day, 17),
            at(e + day, 5),
            Status.RESOLVED,
        ),
    ]


def _lay_out(plan: _Plan, period_start: date, period_end: date, rng: np.random.Generator) -> _Rows:
    start = _epoch(local_instant(period_start))
    end = _epoch(local_instant(period_end + timedelta(days=1)))
    timeline = _Timeline(rng, start, end)
    remaining = dict(plan)
    rows = _Rows()
    for case in _edge_cases(period_start, period_end):
        if remaining.get((case.outcome, case.arrival), 0) <= 0:
            continue  # a tiny plan: this cell has no dossier to spare
        remaining[(case.outcome, case.arrival)] -= 1
        carried = case.arrival is _Arrival.CARRIED_OVER
        case_channel = _DIRECT if carried else case.arrival - 1
        rows.add(
            case.outcome,
            carried,
            np.array([case_channel]),
            np.array([_epoch(case.received)]),
            np.array([_epoch(case.due) if case.due is not None else NO_TIME]),
            np.array([_epoch(case.finished) if case.finished is not None else NO_TIME]),
            np.array([_STATUS_INDEX[case.status]]),
            case.outcome is _Outcome.DELETED,
        )
    for (outcome, arrival), count in sorted(remaining.items()):
        if count <= 0:
            continue
        carried = arrival is _Arrival.CARRIED_OVER
        if carried:
            # Carried-over dossiers came in by any channel, like the others.
            channel = rng.choice(3, count, p=[0.15, 0.82, 0.03]).astype(np.int64)
        else:
            channel = np.full(count, int(arrival) - 1, dtype=np.int64)
        if outcome is _Outcome.DELETED:
            underlying = rng.integers(0, len(_DELETED_UNDERLYING), count)
            for position, shape in enumerate(_DELETED_UNDERLYING):
                part = channel[underlying == position]
                if len(part):
                    rows.add(outcome, carried, part, *timeline.lay_out(shape, part, carried), deleted=True)
            continue
        rows.add(outcome, carried, channel, *timeline.lay_out(outcome, channel, carried), deleted=False)
    return rows


# ---------------------------------------------------------------- materialising


def _draw_offers(
    catalogue: _Catalogue, has_due: npt.NDArray[np.bool_], online: npt.NDArray[np.bool_], rng: np.random.Generator
) -> Times:
    """A procedure offer per dossier: with a time limit iff the dossier has a due date, online-capable
    if it came in online."""
    chosen = np.zeros(len(has_due), dtype=np.int64)
    for needs_limit in (False, True):
        for needs_online in (False, True):
            wanted = (has_due == needs_limit) & (online == needs_online)
            if not wanted.any():
                continue
            eligible = catalogue.offer_has_time_limit == needs_limit
            if needs_online:
                eligible &= catalogue.offer_online
            candidates = np.flatnonzero(eligible)
            if len(candidates) == 0:
                raise ValueError(f"no procedure offer with time limit={needs_limit}, online={needs_online}")
            cumulative = np.cumsum(catalogue.offer_weight[candidates])
            draws = rng.random(int(wanted.sum())) * cumulative[-1]
            picks = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(candidates) - 1)
            chosen[wanted] = candidates[picks]
    return chosen


def _sequence_numbers(agency: Times, day: Times, received: Times) -> Times:
    """Per agency and local day, 1, 2, 3, ... in order of reception (the last part of a dossier code)."""
    size = len(agency)
    order = np.lexsort((np.arange(size), received, day, agency))
    sorted_agency, sorted_day = agency[order], day[order]
    starts = np.ones(size, dtype=np.bool_)
    starts[1:] = (sorted_agency[1:] != sorted_agency[:-1]) | (sorted_day[1:] != sorted_day[:-1])
    group_start = np.maximum.accumulate(np.where(starts, np.arange(size), 0))
    numbers = np.empty(size, dtype=np.int64)
    numbers[order] = np.arange(size) - group_start + 1
    return numbers


def _applicants(catalogue: _Catalogue, agency: Times, rng: np.random.Generator) -> list[Applicant]:
    size = len(agency)
    female = rng.random(size) < 0.52
    family_weights = np.array(names.FAMILY_NAME_WEIGHTS) / sum(names.FAMILY_NAME_WEIGHTS)
    family = rng.choice(len(names.FAMILY_NAMES), size, p=family_weights).tolist()
    middle = rng.integers(0, len(names.MIDDLE_NAMES_MALE), size).tolist()
    given = rng.integers(0, len(names.GIVEN_NAMES_MALE), size).tolist()
    birth_year = rng.integers(1950, 2007, size).tolist()
    birth_province = rng.integers(0, len(names.ID_PROVINCE_CODES), size).tolist()
    serial = rng.integers(0, 1_000_000, size).tolist()
    phone_prefix = rng.integers(0, len(names.PHONE_PREFIXES), size).tolist()
    phone_number = rng.integers(0, 10_000_000, size).tolist()
    house = rng.integers(1, 300, size).tolist()
    street = rng.integers(0, len(names.STREETS), size).tolist()
    hamlet = rng.integers(1, 16, size).tolist()
    commune = catalogue.agency_commune[agency].tolist()
    applicants = []
    for index, is_female in enumerate(female.tolist()):
        middles = names.MIDDLE_NAMES_FEMALE if is_female else names.MIDDLE_NAMES_MALE
        givens = names.GIVEN_NAMES_FEMALE if is_female else names.GIVEN_NAMES_MALE
        year = birth_year[index]
        # CCCD: birth province (3), century and sex (1: 0/1 for 19xx, 2/3 for 20xx), year (2), serial (6).
        century_sex = (0 if year < 2000 else 2) + (1 if is_female else 0)
        unit = commune[index]
        place = catalogue.commune_units[unit]
        if catalogue.commune_urban[unit]:
            address = f"Số {house[index]} đường {names.STREETS[street[index]]}, {place}"
        else:
            address = f"Thôn {hamlet[index]}, {place}"
        applicants.append(
            Applicant(
                name=f"{names.FAMILY_NAMES[family[index]]} {middles[middle[index]]} {givens[given[index]]}",
                id_number=f"{names.ID_PROVINCE_CODES[birth_province[index]]}{century_sex}{year % 100:02d}"
                f"{serial[index]:06d}",
                phone=f"{names.PHONE_PREFIXES[phone_prefix[index]]}{phone_number[index]:07d}",
                address=address,
            )
        )
    return applicants


def _histories(rows: _Rows, catalogue: _Catalogue, rng: np.random.Generator) -> list[DossierHistory]:
    received = rows.joined("received")
    due = rows.joined("due")
    finished = rows.joined("finished")
    status_index = rows.joined("status")
    channel = rows.joined("channel")
    deleted = rows.joined("deleted").astype(np.bool_)
    size = len(received)

    offers = _draw_offers(catalogue, due != NO_TIME, channel == _ONLINE, rng)
    agency = catalogue.offer_agency[offers]
    day = _local_day(received)
    numbers = _sequence_numbers(agency, day, received).tolist()
    applicants = _applicants(catalogue, agency, rng)

    fee = np.array([catalogue.procedures[o].fee_required for o in offers.tolist()], dtype=np.bool_)
    payable = np.array([catalogue.procedures[o].online_payment for o in offers.tolist()], dtype=np.bool_)
    pays_share = np.where(channel == _ONLINE, 0.7, 0.05)
    paid_online = (fee & payable & (rng.random(size) < pays_share)).tolist()
    digitized = (rng.random(size) < 0.6).tolist()
    result_electronic = (rng.random(size) < 0.45).tolist()
    rating = np.where(rng.random(size) < 0.3, rng.choice(5, size, p=[0.02, 0.03, 0.1, 0.25, 0.6]) + 1, 0).tolist()
    processing_fraction = rng.uniform(0.02, 0.3, size).tolist()
    supplement_round = (rng.random(size) < 0.06).tolist()
    processing_delay = rng.integers(600, 2 * DAY_SECONDS, size).tolist()
    waiting_delay = rng.integers(3600, 5 * DAY_SECONDS, size).tolist()
    rating_delay = rng.integers(60, 3 * DAY_SECONDS, size).tolist()
    delete_delay = rng.integers(3600, 20 * DAY_SECONDS, size).tolist()

    day_codes: dict[int, str] = {}
    for value in np.unique(day).tolist():
        day_codes[value] = date.fromordinal(value + _EPOCH_ORDINAL).strftime("%y%m%d")

    procedures = catalogue.procedures
    agencies = catalogue.agencies
    field_names = {item.code: item.name for item in catalogue.fields}
    received_list, due_list, finished_list = received.tolist(), due.tolist(), finished.tolist()
    status_list, channel_list, deleted_list = status_index.tolist(), channel.tolist(), deleted.tolist()
    agency_list, offer_list, day_list = agency.tolist(), offers.tolist(), day.tolist()

    def moment(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, LOCAL_TIMEZONE)

    codes = [
        f"{agencies[agency_list[index]].dossier_prefix}-{day_codes[day_list[index]]}-{numbers[index]:04d}"
        for index in range(size)
    ]
    # Sorted by reception time, then code, before building: sorting half a million built tuples by
    # datetime keys costs more than sorting integers and strings here.
    order = np.lexsort((np.array(codes, dtype=np.str_), received)).tolist() if size else []
    histories: list[DossierHistory] = []
    for index in order:
        start, end, final = received_list[index], finished_list[index], STATUSES[status_list[index]]
        paid, scanned = paid_online[index], digitized[index]
        received_at = moment(start)
        states = [DossierState(received_at, Status.RECEIVED, None, False, scanned, False, None, False)]
        if end != NO_TIME:
            gap = end - start
            if gap >= 4:
                processing = start + max(1, int(gap * processing_fraction[index]))
                states.append(
                    DossierState(moment(processing), Status.PROCESSING, None, paid, scanned, False, None, False)
                )
                if supplement_round[index] and gap >= 10:
                    states.append(
                        DossierState(
                            moment(start + int(gap * 0.4)),
                            Status.SUPPLEMENT_REQUESTED,
                            None,
                            paid,
                            scanned,
                            False,
                            None,
                            False,
                        )
                    )
                    states.append(
                        DossierState(
                            moment(start + int(gap * 0.7)), Status.PROCESSING, None, paid, scanned, False, None, False
                        )
                    )
            finished_at = moment(end)
            electronic = final is Status.RESOLVED and result_electronic[index]
            states.append(DossierState(finished_at, final, finished_at, paid, scanned, electronic, None, False))
            if rating[index] and final in (Status.RESOLVED, Status.RETURNED):
                states.append(
                    DossierState(
                        moment(end + rating_delay[index]),
                        final,
                        finished_at,
                        paid,
                        scanned,
                        electronic,
                        rating[index],
                        False,
                    )
                )
        elif final is not Status.RECEIVED:
            processing = start + processing_delay[index]
            states.append(DossierState(moment(processing), Status.PROCESSING, None, paid, scanned, False, None, False))
            if final is not Status.PROCESSING:  # awaiting supplements, or cancelled without a time
                states.append(
                    DossierState(
                        moment(processing + waiting_delay[index]), final, None, paid, scanned, False, None, False
                    )
                )
        if deleted_list[index]:
            last = states[-1]
            removed_at = moment(int(last.updated_at.timestamp()) + delete_delay[index])
            states.append(last._replace(updated_at=removed_at, deleted=True))
        procedure = procedures[offer_list[index]]
        histories.append(
            DossierHistory(
                codes[index],
                agencies[agency_list[index]].code,
                procedure.code,
                procedure.field_code,
                field_names[procedure.field_code],
                CHANNELS[channel_list[index]],
                received_at,
                moment(due_list[index]) if due_list[index] != NO_TIME else None,
                procedure.fee_required,
                applicants[index],
                tuple(states),
            )
        )
    return histories


def _build(
    targets: CalibrationTargets,
    noise: int,
    period_start: date,
    period_end: date,
    seed: int,
    province_suffix: str,
    province_name: str,
) -> Dataset:
    if period_end < period_start:
        raise ValueError("the period ends before it starts")
    catalogue = _build_catalogue(seed, province_suffix, province_name)
    rng = np.random.default_rng(seed)
    rows = _lay_out(_plan(targets, noise), period_start, period_end, rng)
    with _garbage_collector_paused():
        histories = _histories(rows, catalogue, rng)
    return Dataset(
        agencies=catalogue.agencies,
        fields=catalogue.fields,
        procedures=catalogue.procedures,
        dossiers=tuple(histories),
        province_suffix=province_suffix,
        period_start=period_start,
        period_end=period_end,
        seed=seed,
    )
