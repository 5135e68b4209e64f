"""Calibrated data sets: the II.06a totals they were built for, and edge cases that catch mistakes."""

from __future__ import annotations

import time as clock
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

import pytest

from baocao.simulators.onestop.expected_results import COUNT_COLUMNS, TTHC_RESULTS_COLUMNS, on_time_rate
from baocao.simulators.onestop.generator import (
    LAM_DONG_2019,
    LAM_DONG_2019_PERIOD_END,
    LAM_DONG_2019_PERIOD_START,
    CalibratedDataset,
    CalibrationTargets,
    generate_calibrated,
    local_instant,
)
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Channel, Dossier, Status

PERIOD_START = date(2026, 1, 15)
PERIOD_END = date(2026, 5, 14)
SMALL = CalibrationTargets(
    received_total=6_000, resolved_total=5_800, resolved_early_or_on_time=5_730, resolved_late=70
)
FINISHED = (Status.RESOLVED, Status.RETURNED, Status.WITHDRAWN)


@pytest.fixture(scope="module")
def small() -> CalibratedDataset:
    return generate_calibrated(SMALL, PERIOD_START, PERIOD_END, seed=3)


@pytest.fixture(scope="module")
def lam_dong() -> tuple[CalibratedDataset, float]:
    started = clock.perf_counter()
    calibrated = generate_calibrated(LAM_DONG_2019, LAM_DONG_2019_PERIOD_START, LAM_DONG_2019_PERIOD_END, seed=7)
    return calibrated, clock.perf_counter() - started


def totals_with(dossiers: Iterable[Dossier], start: date, end: date, mistake: str | None = None) -> dict[str, int]:
    """II.06a counts as an aggregation would compute them, optionally with one typical mistake."""
    zone: tzinfo = UTC if mistake == "period_in_utc" else LOCAL_TIMEZONE
    period_start = datetime.combine(start, time(0), tzinfo=zone)
    period_end = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)

    def day(moment: datetime) -> date:
        return moment.astimezone(LOCAL_TIMEZONE).date()

    counts: Counter[str] = Counter()
    for dossier in dossiers:
        if dossier.deleted and mistake != "counts_deleted":
            continue
        cancelled = dossier.status is Status.CANCELLED
        if cancelled and mistake != "counts_cancelled":
            continue
        if dossier.received_at >= period_end:
            continue
        finished = dossier.finished_at if (dossier.status in FINISHED or cancelled) else None
        if finished is not None and finished < period_start:
            continue
        if dossier.received_at < period_start:
            counts["carried_over"] += 1
        else:
            counts["received_online" if dossier.channel is Channel.ONLINE else "received_direct"] += 1
        due = dossier.due_at
        if finished is not None and (finished <= period_end if mistake == "end_inclusive" else finished < period_end):
            if dossier.status in (Status.RETURNED, Status.WITHDRAWN) or due is None:
                counts["resolved_on_time"] += 1
            elif (day(finished) > day(due)) if mistake == "late_by_calendar_day" else (finished > due):
                counts["resolved_late"] += 1
            elif day(finished) < day(due):
                counts["resolved_early"] += 1
            else:
                counts["resolved_on_time"] += 1
        else:
            awaiting = dossier.status is Status.SUPPLEMENT_REQUESTED and mistake != "supplement_is_overdue"
            not_yet_due = due is None or (due > period_end if mistake == "end_inclusive" else due >= period_end)
            counts["in_progress_within" if awaiting or not_yet_due else "in_progress_overdue"] += 1
    return {column: counts[column] for column in COUNT_COLUMNS if not column.endswith("_total")}


def test_small_calibration_hits_its_targets_and_identities(small: CalibratedDataset) -> None:
    total = small.expected_total
    assert tuple(total) == TTHC_RESULTS_COLUMNS
    assert total["received_total"] == SMALL.received_total
    assert total["resolved_total"] == SMALL.resolved_total
    assert total["resolved_late"] == SMALL.resolved_late
    assert total["resolved_early"] + total["resolved_on_time"] == SMALL.resolved_early_or_on_time  # type: ignore[operator]
    assert total["received_total"] == total["received_online"] + total["received_direct"] + total["carried_over"]  # type: ignore[operator]
    assert total["in_progress_total"] == total["in_progress_within"] + total["in_progress_overdue"]  # type: ignore[operator]
    assert total["on_time_rate"] == on_time_rate(5_730, 5_800) == Decimal("98.79")
    assert all(total[column] for column in COUNT_COLUMNS), "every column is exercised"
    # Dossiers that count nowhere are present too.
    final = small.dataset.current_dossiers()
    assert len(final) > SMALL.received_total
    assert any(dossier.status is Status.CANCELLED for dossier in final)
    assert any(dossier.deleted for dossier in final)


def test_rows_add_up_to_the_total(small: CalibratedDataset) -> None:
    for column in COUNT_COLUMNS:
        assert sum(int(row[column] or 0) for row in small.expected_rows.values()) == small.expected_total[column]
    agencies = {agency.code for agency in small.dataset.agencies}
    fields = {item.code for item in small.dataset.fields}
    assert all(agency in agencies and field in fields for agency, field in small.expected_rows)


def test_a_plain_aggregation_agrees_with_the_reference(small: CalibratedDataset) -> None:
    got = totals_with(small.dataset.current_dossiers(), PERIOD_START, PERIOD_END)
    assert got == {column: small.expected_total[column] for column in got}


@pytest.mark.parametrize(
    "mistake",
    [
        "period_in_utc",
        "counts_cancelled",
        "counts_deleted",
        "late_by_calendar_day",
        "supplement_is_overdue",
        "end_inclusive",
    ],
)
def test_edge_cases_make_each_typical_mistake_miss(small: CalibratedDataset, mistake: str) -> None:
    got = totals_with(small.dataset.current_dossiers(), PERIOD_START, PERIOD_END, mistake)
    assert got != {column: small.expected_total[column] for column in got}


def test_optional_splits_are_honoured() -> None:
    targets = CalibrationTargets(
        received_total=3_000,
        resolved_total=2_900,
        resolved_early_or_on_time=2_870,
        resolved_late=30,
        carried_over=250,
        received_online=1_200,
        resolved_early=2_000,
        in_progress_overdue=40,
    )
    total = generate_calibrated(targets, PERIOD_START, PERIOD_END, seed=9).expected_total
    assert (total["carried_over"], total["received_online"], total["resolved_early"]) == (250, 1_200, 2_000)
    assert (total["resolved_on_time"], total["in_progress_overdue"], total["in_progress_within"]) == (870, 40, 60)


def test_short_period_and_tiny_targets_still_exact() -> None:
    targets = CalibrationTargets(received_total=40, resolved_total=30, resolved_early_or_on_time=29, resolved_late=1)
    calibrated = generate_calibrated(targets, date(2026, 10, 15), date(2026, 11, 14), seed=1)
    total = calibrated.expected_total
    assert (total["received_total"], total["resolved_total"], total["resolved_late"]) == (40, 30, 1)


def test_inconsistent_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="resolved_total"):
        CalibrationTargets(received_total=10, resolved_total=9, resolved_early_or_on_time=5, resolved_late=1)
    with pytest.raises(ValueError, match="more dossiers resolved"):
        CalibrationTargets(received_total=5, resolved_total=9, resolved_early_or_on_time=8, resolved_late=1)


def test_lam_dong_2019_totals(lam_dong: tuple[CalibratedDataset, float]) -> None:
    calibrated, seconds = lam_dong
    total = calibrated.expected_total
    assert total["received_total"] == 491_498
    assert total["resolved_total"] == 475_158
    assert total["resolved_early"] + total["resolved_on_time"] == 470_208  # type: ignore[operator]
    assert total["resolved_late"] == 4_950
    assert total["on_time_rate"] == Decimal("98.96") == LAM_DONG_2019.on_time_rate
    assert total["in_progress_total"] == 491_498 - 475_158
    assert seconds < 60, f"generating the calibrated year took {seconds:.1f} s"


def test_lam_dong_2019_has_the_edge_cases(lam_dong: tuple[CalibratedDataset, float]) -> None:
    calibrated, _ = lam_dong
    start, end = LAM_DONG_2019_PERIOD_START, LAM_DONG_2019_PERIOD_END
    # (history, final state) pairs: cheaper than materialising half a million records.
    final = [(history, history.states[-1]) for history in calibrated.dataset.dossiers]
    last_second_before = local_instant(start - timedelta(days=1), 23, 59, 59)
    midnight_after = local_instant(end + timedelta(days=1))
    assert any(h.received_at == last_second_before and s.finished_at is None for h, s in final)
    assert any(s.finished_at == local_instant(end, 23, 59, 59) and s.status is Status.RESOLVED for h, s in final)
    assert any(s.finished_at == midnight_after and s.status is Status.RESOLVED for h, s in final)
    assert any(h.due_at == midnight_after and s.finished_at is None for h, s in final)
    assert any(
        s.status is Status.RESOLVED
        and h.due_at is not None
        and s.finished_at is not None
        and s.finished_at > h.due_at
        and s.finished_at.date() == h.due_at.date()
        for h, s in final
    )
    assert any(
        s.status is Status.CANCELLED and s.finished_at is not None and start <= s.finished_at.date() <= end
        for h, s in final
    )
    assert any(s.deleted and s.status is Status.RESOLVED for h, s in final)
    assert any(h.received_at == midnight_after for h, s in final)
