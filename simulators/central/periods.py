"""Reporting-period windows as the central computes them (DOMAIN.md, "Reporting periods").

Regime ``D09`` (Decree 09/2019/ND-CP, Art. 12) cuts periods from the 15th of the month before to
the 14th; regime ``CALENDAR`` uses calendar months. Dates are inclusive.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Final

# The id form each period type must use; the schema only checks that the id has one of the forms.
_ID_FORMS: Final[dict[str, re.Pattern[str]]] = {
    "MONTH": re.compile(r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])"),
    "QUARTER": re.compile(r"(?P<year>\d{4})-Q(?P<quarter>[1-4])"),
    "HALF_YEAR": re.compile(r"(?P<year>\d{4})-H1"),
    "NINE_MONTHS": re.compile(r"(?P<year>\d{4})-9M"),
    "YEAR": re.compile(r"(?P<year>\d{4})"),
}
_ID_EXAMPLES: Final[dict[str, str]] = {
    "MONTH": "YYYY-MM",
    "QUARTER": "YYYY-Qn",
    "HALF_YEAR": "YYYY-H1",
    "NINE_MONTHS": "YYYY-9M",
    "YEAR": "YYYY",
}
PERIOD_TYPES: Final[tuple[str, ...]] = tuple(_ID_FORMS)
REGIMES: Final[tuple[str, ...]] = ("D09", "CALENDAR")


class PeriodError(ValueError):
    """The period's type, id or regime do not describe a period."""


@dataclass(frozen=True)
class PeriodWindow:
    """Inclusive first and last day of a reporting period."""

    start: date
    end: date


def period_window(period_type: str, period_id: str, regime: str) -> PeriodWindow:
    """Return the window of the period ``period_id`` of ``period_type`` under ``regime``.

    Raises ``PeriodError`` when the id does not have the form of the type (``2026-11`` for MONTH,
    ``2026-Q3`` for QUARTER, ``2026-H1``, ``2026-9M``, ``2026``) or the regime is unknown.
    """
    form = _ID_FORMS.get(period_type)
    if form is None:
        raise PeriodError(f"unknown period type {period_type!r}")
    if regime not in REGIMES:
        raise PeriodError(f"unknown regime {regime!r}")
    match = form.fullmatch(period_id)
    if match is None:
        raise PeriodError(
            f"period id {period_id!r} does not have the form {_ID_EXAMPLES[period_type]} of type {period_type}"
        )
    year = int(match["year"])
    if year < 2:  # D09 windows start in the year before; date() has no year 0
        raise PeriodError(f"period year {year} is out of range")
    # Calendar months covered by the period: first and last (1..12).
    if period_type == "MONTH":
        first_month = last_month = int(match["month"])
    elif period_type == "QUARTER":
        last_month = 3 * int(match["quarter"])
        first_month = last_month - 2
    elif period_type == "HALF_YEAR":
        first_month, last_month = 1, 6
    elif period_type == "NINE_MONTHS":
        first_month, last_month = 1, 9
    else:
        first_month, last_month = 1, 12

    if regime == "CALENDAR":
        return PeriodWindow(
            start=date(year, first_month, 1),
            end=date(year, last_month, calendar.monthrange(year, last_month)[1]),
        )
    # D09: from the 15th of the month before the first month to the 14th of the last month.
    start = date(year - 1, 12, 15) if first_month == 1 else date(year, first_month - 1, 15)
    return PeriodWindow(start=start, end=date(year, last_month, 14))
