"""TTHC_RESULTS (form II.06a, Circular 01/2020/TT-VPCP): dossier counts by agency × field.

Two steps. `tthc_rows_query` classifies every dossier against the period and groups in the
warehouse (one GROUP BY, so a province-year never leaves the database). `assemble_tthc_report` is
pure: grouped rows in, the report frame out — sections by level from the registry, section and
report totals, on-time rates. Definitions: DOMAIN.md, "TTHC_RESULTS".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from baocao.core.canonical import FINISHED_STATUSES, Channel, Status
from baocao.core.errors import DataQualityError, RuleFailure
from baocao.core.layouts.tthc import COUNT_COLUMNS, Kind
from baocao.core.periods import Period
from baocao.core.registry import LEVEL_ORDER, Level, Registry
from baocao.core.report import Completeness
from baocao.core.tables import dossiers


class local_day(FunctionElement[Any]):  # noqa: N801 - reads as a SQL function
    """The calendar day of a stored local time (times are stored as naive UTC+7)."""

    type = sa.Date()
    inherit_cache = True


@compiles(local_day)
def _local_day_default(element: local_day, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler: Any, **kw: Any) -> str:
    # SQLite's CAST(... AS DATE) yields the year as a number; date() gives 'YYYY-MM-DD'.
    return f"date({compiler.process(element.clauses, **kw)})"


class scanned(FunctionElement[Any]):  # noqa: N801 - reads as a SQL function
    """A time column compared without its index (SQLite's unary `+`; the column itself elsewhere).

    A report selects every dossier received before the period ends: nearly the whole table. With no
    statistics on the value range, SQLite walks `ix_dossiers_received` and then fetches each row by
    its rowid, a third slower than reading the table in order. PostgreSQL's planner decides by itself.
    """

    type = sa.DateTime()  # used on reception times only
    inherit_cache = True


@compiles(scanned)
def _scanned_default(element: scanned, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(scanned, "sqlite")
def _scanned_sqlite(element: scanned, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def _one_of(column: ColumnElement[Any], values: Iterable[str]) -> ColumnElement[bool]:
    """`column IN (…)` as equalities: SQLite looks a short IN list up in a temporary b-tree per row,
    which made a year's aggregation a quarter slower; every engine reads the two forms alike."""
    return sa.or_(*(column == str(value) for value in values))


REPORT_COLUMNS = ("kind", "level", "agency", "field", "field_name", *COUNT_COLUMNS, "on_time_rate")
# The rule a grouped row breaks when its agency is not in the registry (`assemble_tthc_report`).
UNKNOWN_AGENCY_RULE = "tthc.agency_in_registry"


def dossier_classes(period: Period) -> dict[str, ColumnElement[bool]]:
    """For each II.06a count, the condition a dossier must meet to be counted in it."""
    d = dossiers.c
    starts, ends = period.starts_at, period.ends_before
    finished = sa.and_(_one_of(d.status, FINISHED_STATUSES), d.finished_at.is_not(None))
    finished_in_period = sa.and_(finished, d.finished_at >= starts, d.finished_at < ends)
    resolved_with_due = sa.and_(finished_in_period, d.status == Status.RESOLVED, d.due_at.is_not(None))
    received_in_period = sa.and_(d.received_at >= starts, d.received_at < ends)
    open_at_end = sa.not_(sa.and_(finished, d.finished_at < ends))
    awaiting_supplement = d.status == Status.SUPPLEMENT_REQUESTED
    return {
        # Every dossier selected by `counted_in_report` is received in the period or carried over.
        "received_total": sa.true(),
        "received_online": sa.and_(received_in_period, d.channel == Channel.ONLINE),
        "received_direct": sa.and_(received_in_period, _one_of(d.channel, (Channel.DIRECT, Channel.POSTAL))),
        "carried_over": d.received_at < starts,
        "resolved_total": finished_in_period,
        "resolved_early": sa.and_(resolved_with_due, local_day(d.finished_at) < local_day(d.due_at)),
        "resolved_on_time": sa.and_(
            finished_in_period,
            sa.or_(
                sa.and_(
                    d.status == Status.RESOLVED,
                    d.due_at.is_not(None),
                    local_day(d.finished_at) == local_day(d.due_at),
                    d.finished_at <= d.due_at,
                ),
                # Returned and withdrawn dossiers, and those without a time limit, count as on time.
                _one_of(d.status, (Status.RETURNED, Status.WITHDRAWN)),
                d.due_at.is_(None),
            ),
        ),
        "resolved_late": sa.and_(resolved_with_due, d.finished_at > d.due_at),
        "in_progress_total": open_at_end,
        "in_progress_within": sa.and_(open_at_end, sa.or_(d.due_at.is_(None), d.due_at >= ends, awaiting_supplement)),
        "in_progress_overdue": sa.and_(
            open_at_end, d.due_at.is_not(None), d.due_at < ends, sa.not_(awaiting_supplement)
        ),
    }


def counted_in_report(period: Period) -> ColumnElement[bool]:
    """Dossiers the period's report counts: received by its end and not finished before its start.

    Cancelled (entered by mistake) and deleted dossiers count nowhere.
    """
    d = dossiers.c
    finished_before_start = sa.and_(
        _one_of(d.status, FINISHED_STATUSES), d.finished_at.is_not(None), d.finished_at < period.starts_at
    )
    return sa.and_(
        d.deleted.is_(False),
        d.status != Status.CANCELLED,
        scanned(d.received_at).is_not(None),
        scanned(d.received_at) < period.ends_before,
        sa.not_(finished_before_start),
    )


def tthc_rows_query(period: Period) -> sa.Select[Any]:
    """One row per agency × field with the eleven counts, computed in the warehouse."""
    d = dossiers.c
    counts = [
        sa.func.sum(sa.case((condition, 1), else_=0)).label(name) for name, condition in dossier_classes(period).items()
    ]
    return (
        sa.select(
            d.agency_code.label("agency"),
            d.field_code.label("field"),
            sa.func.max(d.field_name).label("field_name"),
            *counts,
        )
        .where(counted_in_report(period))
        .group_by(d.agency_code, d.field_code)
        .order_by(d.agency_code, d.field_code)
    )


def on_time_rate(early: int, on_time: int, resolved_total: int) -> Decimal | None:
    """(early + on time) / resolved × 100, 2 decimals rounded half-up; None when nothing was resolved.

    Integer arithmetic, so no binary rounding can tip a half the wrong way.
    """
    if resolved_total == 0:
        return None
    scaled = (early + on_time) * 100 * 100
    hundredths = (2 * scaled + resolved_total) // (2 * resolved_total)
    return Decimal(hundredths).scaleb(-2)


def report_levels(registry: Registry, period: Period) -> list[Level]:
    present = {agency.level for agency in registry.active(period)}
    return [level for level in LEVEL_ORDER if level in present]


def completeness(rows: pd.DataFrame, registry: Registry, period: Period) -> Completeness:
    """Expected = agencies active in the period; reported = those with at least one row of data."""
    expected = [agency.code for agency in registry.active(period)]
    reported = set(rows["agency"]) if len(rows) else set()
    missing = tuple(code for code in expected if code not in reported)
    return Completeness(expected=len(expected), reported=len(set(expected) & reported), missing=missing)


def moved_units(registry: Registry, period: Period, day: date) -> dict[str, str]:
    """Agency code → the unit carrying its work on `day`, for the registry's agencies that are not
    active in the period and have such a unit (merged, renamed, or ended with the district level).
    Agencies active in the period, and codes the registry does not know, are not in it."""
    active = {agency.code for agency in registry.active(period)}
    return {code: unit for code, unit in registry.crosswalk(day).items() if code not in active and unit != code}


def rows_onto_units(
    rows: pd.DataFrame,
    registry: Registry,
    period: Period,
    day: date,
    keys: Sequence[str],
    aggregations: Mapping[str, str],
) -> pd.DataFrame:
    """Rows (column `agency`) of agencies not active in the period moved to the unit carrying their work on `day`.

    An agency the registry knows but that is not active in the period becomes
    `registry.current_unit(code, day)` (following successors); active agencies and codes the registry
    does not know stay as they are. Rows that then share `keys` are combined column by column with
    `aggregations` (column → pandas aggregation, e.g. "sum"); columns named in neither are dropped.
    When no row moves, `rows` itself comes back unchanged. Shared by TTHC_RESULTS and SERVICE_INDEX.
    """
    if rows.empty:
        return rows
    units = moved_units(registry, period, day)
    moved = rows["agency"].map(lambda code: units.get(code, code))
    if (moved == rows["agency"]).all():
        return rows
    out = rows.assign(agency=moved)
    return out.groupby(list(keys), as_index=False, dropna=False).agg(dict(aggregations))


def onto_units(rows: pd.DataFrame, registry: Registry, period: Period, day: date) -> pd.DataFrame:
    """Rows of agencies not active in the period move to the unit that carries their work on `day`.

    After a merge (or the end of the district level on 2025-07-01) dossiers still open belong to the
    successor; rows that land on the same agency × field are summed.
    """
    sums = {name: "sum" for name in COUNT_COLUMNS}
    return rows_onto_units(rows, registry, period, day, ("agency", "field"), {"field_name": "max", **sums})


def reaggregate_onto_current_units(report_rows: pd.DataFrame, registry: Registry, today: date) -> pd.DataFrame:
    """A period's stored rows re-expressed on today's units, for comparable series across reforms.

    `series_break` is True where the rows came from units that no longer exist (for example the
    districts before 2025-07-01), so that charts show the break instead of hiding it.
    """
    crosswalk = registry.crosswalk(today)
    levels = registry.level_of()
    out = report_rows.assign(
        source_agency=report_rows["agency"], agency=report_rows["agency"].map(lambda c: crosswalk.get(c, c))
    )
    out["series_break"] = out["agency"] != out["source_agency"]
    sums = {name: "sum" for name in COUNT_COLUMNS}
    grouped = out.groupby(["agency", "field"], as_index=False).agg({"field_name": "max", "series_break": "any", **sums})
    grouped["level"] = grouped["agency"].map(levels)
    grouped["on_time_rate"] = [
        on_time_rate(int(r.resolved_early), int(r.resolved_on_time), int(r.resolved_total))
        for r in grouped.itertuples()
    ]
    return grouped


def _total(frame: pd.DataFrame) -> dict[str, int]:
    return {name: int(frame[name].sum()) for name in COUNT_COLUMNS}


def assemble_tthc_report(rows: pd.DataFrame, registry: Registry, period: Period) -> pd.DataFrame:
    """Grouped rows → the II.06a report: rows by section (level), section totals, the report total.

    Rows of an agency unknown to the registry are a DataQualityError (rule `UNKNOWN_AGENCY_RULE`, one failure
    per agency): validation quarantines such dossiers, so rows reaching this point mean the registry no longer
    lists an agency whose dossiers were stored. Nothing is published until the registry or the data is fixed.
    """
    levels = registry.level_of()
    frame = onto_units(rows.copy(), registry, period, period.end)
    for name in COUNT_COLUMNS:
        frame[name] = frame[name].astype("int64")
    unknown = sorted(set(frame["agency"]) - set(levels))
    if unknown:
        rows_of = frame["agency"].value_counts()
        raise DataQualityError(
            f"TTHC_RESULTS {period.id}",
            [
                RuleFailure(UNKNOWN_AGENCY_RULE, agency, f"not in the agency registry ({rows_of[agency]} row(s))")
                for agency in unknown
            ],
        )
    frame["level"] = frame["agency"].map(levels)
    frame["kind"] = Kind.ROW
    out: list[dict[str, Any]] = []
    present = set(report_levels(registry, period)) | set(frame["level"])
    for level in [level for level in LEVEL_ORDER if level in present]:
        section = frame[frame["level"] == level].sort_values(["agency", "field"])
        out.extend(section.to_dict("records"))
        out.append({"kind": Kind.SECTION, "level": level.value, **_total(section)})
    out.append({"kind": Kind.TOTAL, **_total(frame)})
    report = pd.DataFrame(out, columns=list(REPORT_COLUMNS[:-1]))
    report["on_time_rate"] = [
        on_time_rate(int(r.resolved_early), int(r.resolved_on_time), int(r.resolved_total)) for r in report.itertuples()
    ]
    return report
