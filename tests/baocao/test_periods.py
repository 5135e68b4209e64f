"""Periods: DOMAIN.md's table for both regimes, the cut-off rule, and clear errors."""

from __future__ import annotations

from datetime import date

import pytest

from baocao.core.errors import ConfigurationError
from baocao.core.periods import PeriodType, last_complete_period, parse_period

D09 = [  # DOMAIN.md, "Reporting periods"
    ("2026-11", PeriodType.MONTH, "2026-10-15", "2026-11-14"),
    ("2026-01", PeriodType.MONTH, "2025-12-15", "2026-01-14"),
    ("2026-Q1", PeriodType.QUARTER, "2025-12-15", "2026-03-14"),
    ("2026-Q4", PeriodType.QUARTER, "2026-09-15", "2026-12-14"),
    ("2026-H1", PeriodType.HALF_YEAR, "2025-12-15", "2026-06-14"),
    ("2026-9M", PeriodType.NINE_MONTHS, "2025-12-15", "2026-09-14"),
    ("2026", PeriodType.YEAR, "2025-12-15", "2026-12-14"),
]
CALENDAR = [
    ("2026-02", PeriodType.MONTH, "2026-02-01", "2026-02-28"),
    ("2024-02", PeriodType.MONTH, "2024-02-01", "2024-02-29"),
    ("2026-Q2", PeriodType.QUARTER, "2026-04-01", "2026-06-30"),
    ("2026-H1", PeriodType.HALF_YEAR, "2026-01-01", "2026-06-30"),
    ("2026-9M", PeriodType.NINE_MONTHS, "2026-01-01", "2026-09-30"),
    ("2026", PeriodType.YEAR, "2026-01-01", "2026-12-31"),
]


@pytest.mark.parametrize(("period_id", "kind", "start", "end"), D09)
def test_d09_windows(period_id: str, kind: PeriodType, start: str, end: str) -> None:
    period = parse_period(period_id, "D09")
    assert (period.type, period.start.isoformat(), period.end.isoformat()) == (kind, start, end)


@pytest.mark.parametrize(("period_id", "kind", "start", "end"), CALENDAR)
def test_calendar_windows(period_id: str, kind: PeriodType, start: str, end: str) -> None:
    period = parse_period(period_id, "CALENDAR")
    assert (period.type, period.start.isoformat(), period.end.isoformat()) == (kind, start, end)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-Q5", "2026-H2", "26-11", "2026-11-01", "", "2026-6M"])
def test_invalid_ids_get_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid period id"):
        parse_period(bad)


def test_unknown_regime_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="regime"):
        parse_period("2026-11", "LUNAR")


@pytest.mark.parametrize(
    ("today", "kind", "regime", "expected"),
    [
        (date(2026, 11, 15), "MONTH", "D09", "2026-11"),  # the cut-off run
        (date(2026, 11, 14), "MONTH", "D09", "2026-10"),  # the last day of 2026-11 is not over yet
        (date(2026, 1, 15), "MONTH", "D09", "2026-01"),
        (date(2026, 12, 1), "MONTH", "CALENDAR", "2026-11"),
        (date(2026, 12, 15), "YEAR", "D09", "2026"),
        (date(2026, 12, 14), "YEAR", "D09", "2025"),
        (date(2026, 3, 15), "QUARTER", "D09", "2026-Q1"),
    ],
)
def test_last_complete_period(today: date, kind: str, regime: str, expected: str) -> None:
    assert last_complete_period(kind, regime, today).id == expected
