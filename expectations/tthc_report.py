"""Suite on the aggregated II.06a report: the four identities, the totals and the rates.

These are the central's own business rules (central-api.md), checked before anything is sent: a
failure blocks publication and names the rule, the row and both values. The checks recompute each
total and rate from the report's own rows, independently of how aggregation produced them.
"""

from __future__ import annotations

from fractions import Fraction

import great_expectations.expectations as gxe
import pandas as pd

from baocao.core.layouts.tthc import COUNT_COLUMNS, Kind

SUITE_NAME = "tthc_results_report"
ROW_LABEL = "row_label"

IDENTITIES = {
    "received_total = received_online + received_direct + carried_over": ("received_total", "received_parts"),
    "resolved_total = resolved_early + resolved_on_time + resolved_late": ("resolved_total", "resolved_parts"),
    "in_progress_total = in_progress_within + in_progress_overdue": ("in_progress_total", "in_progress_parts"),
    "received_total = resolved_total + in_progress_total": ("received_total", "received_outcome"),
}


def _rate_half_up(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    hundredths = Fraction(numerator * 100, denominator) * 100
    whole = int(hundredths)
    if hundredths - whole >= Fraction(1, 2):
        whole += 1
    return f"{whole // 100}.{whole % 100:02d}"


def report_check_frame(report: pd.DataFrame) -> pd.DataFrame:
    """The report with the right-hand sides of every rule, recomputed from its own rows."""
    frame = report.copy()
    frame[ROW_LABEL] = [
        f"{r.level}/{r.agency}/{r.field}"
        if r.kind == Kind.ROW
        else (f"{r.level} total" if r.kind == Kind.SECTION else "report total")
        for r in frame.itertuples()
    ]
    frame["received_parts"] = frame["received_online"] + frame["received_direct"] + frame["carried_over"]
    frame["resolved_parts"] = frame["resolved_early"] + frame["resolved_on_time"] + frame["resolved_late"]
    frame["in_progress_parts"] = frame["in_progress_within"] + frame["in_progress_overdue"]
    frame["received_outcome"] = frame["resolved_total"] + frame["in_progress_total"]
    rows = frame[frame["kind"] == Kind.ROW]
    sections = frame[frame["kind"] == Kind.SECTION]
    for name in COUNT_COLUMNS:
        sums: list[float] = []
        for r in frame.itertuples():
            if r.kind == Kind.SECTION:
                sums.append(float(rows.loc[rows["level"] == r.level, name].sum()))
            elif r.kind == Kind.TOTAL:
                sums.append(float(sections[name].sum()))
            else:
                sums.append(float("nan"))
        frame[f"sum_of_{name}"] = sums
    frame["on_time_rate_stated"] = [
        None if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.2f}" for v in frame["on_time_rate"]
    ]
    frame["on_time_rate_recomputed"] = [
        _rate_half_up(int(r.resolved_early) + int(r.resolved_on_time), int(r.resolved_total))
        for r in frame.itertuples()
    ]
    return frame


def report_suite() -> list[gxe.Expectation]:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, description=f"{name} is a non-negative count.")
        for name in COUNT_COLUMNS
    ]
    expectations += [
        gxe.ExpectColumnPairValuesToBeEqual(column_A=left, column_B=right, description=rule)
        for rule, (left, right) in IDENTITIES.items()
    ]
    expectations += [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A=name,
            column_B=f"sum_of_{name}",
            ignore_row_if="either_value_is_missing",
            description=f"{name} of a total = the sum of its rows (section) or of its sections (report).",
        )
        for name in COUNT_COLUMNS
    ]
    expectations.append(
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="on_time_rate_stated",
            column_B="on_time_rate_recomputed",
            ignore_row_if="both_values_are_missing",
            description=(
                "on_time_rate = (early + on time) / resolved × 100, 2 decimals half-up; absent if none resolved."
            ),
        )
    )
    return expectations
