"""Reporting periods: the two regimes of DOMAIN.md (D09 cut-off 15th–14th, CALENDAR) and five types.

A period is identified by its id (`2026-11`, `2026-Q1`, `2026-H1`, `2026-9M`, `2026`) and a regime;
its window is a pair of inclusive local dates (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from baocao.core.errors import ConfigurationError


class Regime(StrEnum):
    D09 = "D09"  # Decree 09/2019/NĐ-CP, Art. 12: from the 15th of one month to the 14th of the next
    CALENDAR = "CALENDAR"


class PeriodType(StrEnum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    HALF_YEAR = "HALF_YEAR"
    NINE_MONTHS = "NINE_MONTHS"
    YEAR = "YEAR"


# D09 periods end on the 14th; the next starts on the 15th.
D09_CUT_OFF_DAY = 14

_PERIOD_ID = re.compile(
    r"^(?P<year>\d{4})(?:-(?:(?P<month>0[1-9]|1[0-2])|Q(?P<quarter>[1-4])|(?P<half>H1)|(?P<nine>9M)))?$"
)


@dataclass(frozen=True, slots=True)
class Period:
    """One reporting period: inclusive local dates `start`..`end`."""

    type: PeriodType
    id: str
    regime: Regime
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        """00:00 local time of the start date (naive, UTC+7)."""
        return datetime.combine(self.start, time.min)

    @property
    def ends_before(self) -> datetime:
        """24:00 local time of the end date, i.e. 00:00 of the next day (naive, UTC+7); exclusive."""
        return datetime.combine(self.end + timedelta(days=1), time.min)

    def __str__(self) -> str:
        return f"{self.id} ({self.regime}, {self.start.isoformat()} → {self.end.isoformat()})"


def _month_end(year: int, month: int) -> date:
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def _calendar_window(year: int, first_month: int, last_month: int) -> tuple[date, date]:
    return date(year, first_month, 1), _month_end(year, last_month)


def _d09_window(year: int, first_month: int, last_month: int) -> tuple[date, date]:
    """D09 window covering months first..last of `year`: 15th of the month before first → 14th of last."""
    start_year, start_month = (year - 1, 12) if first_month == 1 else (year, first_month - 1)
    return date(start_year, start_month, D09_CUT_OFF_DAY + 1), date(year, last_month, D09_CUT_OFF_DAY)


def parse_period(period_id: str, regime: Regime | str = Regime.D09) -> Period:
    """The period with this id in this regime; a clear error for an id of no known form."""
    try:
        regime = Regime(regime)
    except ValueError:
        raise ConfigurationError(f"unknown period regime {regime!r}: expected one of D09, CALENDAR") from None
    match = _PERIOD_ID.fullmatch(period_id.strip())
    if match is None:
        raise ConfigurationError(
            f"invalid period id {period_id!r}: expected YYYY-MM (month), YYYY-Q1..Q4 (quarter), "
            "YYYY-H1 (half year), YYYY-9M (nine months) or YYYY (year)"
        )
    year = int(match["year"])
    if match["month"]:
        period_type, months = PeriodType.MONTH, (int(match["month"]), int(match["month"]))
    elif match["quarter"]:
        quarter = int(match["quarter"])
        period_type, months = PeriodType.QUARTER, (3 * quarter - 2, 3 * quarter)
    elif match["half"]:
        period_type, months = PeriodType.HALF_YEAR, (1, 6)
    elif match["nine"]:
        period_type, months = PeriodType.NINE_MONTHS, (1, 9)
    else:
        period_type, months = PeriodType.YEAR, (1, 12)
    window = _d09_window if regime is Regime.D09 else _calendar_window
    start, end = window(year, *months)
    return Period(type=period_type, id=match.group(0), regime=regime, start=start, end=end)


def period_id_for(period_type: PeriodType, year: int, index: int = 1) -> str:
    """The id of the `index`-th period of that type in `year` (month 1..12, quarter 1..4)."""
    if period_type is PeriodType.MONTH:
        return f"{year:04d}-{index:02d}"
    if period_type is PeriodType.QUARTER:
        return f"{year:04d}-Q{index}"
    if period_type is PeriodType.HALF_YEAR:
        return f"{year:04d}-H1"
    if period_type is PeriodType.NINE_MONTHS:
        return f"{year:04d}-9M"
    return f"{year:04d}"


def last_complete_period(period_type: PeriodType | str, regime: Regime | str, today: date) -> Period:
    """The latest period of this type whose end date is before `today` (the cut-off run's day)."""
    period_type, regime = PeriodType(period_type), Regime(regime)
    candidates: list[Period] = []
    for year in (today.year + 1, today.year, today.year - 1, today.year - 2):
        if period_type is PeriodType.MONTH:
            indexes = range(1, 13)
        elif period_type is PeriodType.QUARTER:
            indexes = range(1, 5)
        else:
            indexes = range(1, 2)
        candidates.extend(parse_period(period_id_for(period_type, year, i), regime) for i in indexes)
    complete = [p for p in candidates if p.end < today]
    return max(complete, key=lambda p: p.end)
