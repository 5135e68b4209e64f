"""Suite on the ONLINE_SERVICES report: the central's rule, the orderings the definitions imply, totals, rates.

central-api.md checks full_process + partial <= authority_count and recomputes the rates; the other
orderings follow from the definitions (DOMAIN.md, "ONLINE_SERVICES") and catch a broken query before
the central does. Totals and rates are recomputed here from the report's own rows, independently of
the transform. A failure names the rule, the row (agency code or "report total") and the values.
"""

from __future__ import annotations

from fractions import Fraction

import great_expectations.expectations as gxe
import pandas as pd

from baocao.core.layouts.online_services import COUNT_COLUMNS, RATES, Kind

SUITE_NAME = "online_services_report"
ROW_LABEL = "row_label"

# rule → (larger or equal, smaller or equal)
ORDERINGS = {
    "full_process_count + partial_count <= authority_count (central rule)": ("authority_count", "online_offered"),
    "full_process_with_dossiers <= services_with_dossiers": ("services_with_dossiers", "full_process_with_dossiers"),
    "services_with_dossiers <= full_process_count + partial_count": ("online_offered", "services_with_dossiers"),
    "dossiers_online <= dossiers_total": ("dossiers_total", "dossiers_online"),
    "online_payment_dossiers <= fee_dossiers": ("fee_dossiers", "online_payment_dossiers"),
    "fee_dossiers <= dossiers_total": ("dossiers_total", "fee_dossiers"),
}


def _rate_half_up(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    hundredths = Fraction(numerator * 100, denominator) * 100
    whole = int(hundredths)
    if hundredths - whole >= Fraction(1, 2):
        whole += 1
    return f"{whole // 100}.{whole % 100:02d}"


def _stated(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return f"{value:.2f}"


def report_check_frame(report: pd.DataFrame) -> pd.DataFrame:
    """The report with a row label and, for every rule, the value recomputed from its own rows."""
    frame = report.copy().reset_index(drop=True)
    frame[ROW_LABEL] = [
        str(agency) if kind == Kind.AGENCY else "report total"
        for kind, agency in zip(frame["kind"], frame["agency"], strict=True)
    ]
    frame["online_offered"] = frame["full_process_count"] + frame["partial_count"]
    agencies = frame[frame["kind"] == Kind.AGENCY]
    is_total = frame["kind"] == Kind.TOTAL
    for name in COUNT_COLUMNS:
        frame[f"sum_of_{name}"] = [float(agencies[name].sum()) if total else float("nan") for total in is_total]
    frame["total_rows"] = int(is_total.sum())
    for rate, (numerator, denominator) in RATES.items():
        frame[f"{rate}_stated"] = [_stated(value) for value in frame[rate]]
        frame[f"{rate}_recomputed"] = [
            _rate_half_up(int(n), int(d)) for n, d in zip(frame[numerator], frame[denominator], strict=True)
        ]
    return frame


def report_suite() -> list[gxe.Expectation]:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToBeInSet(
            column="kind", value_set=[Kind.AGENCY, Kind.TOTAL], description="kind is AGENCY or TOTAL."
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="total_rows", min_value=1, max_value=1, description="The report has exactly one TOTAL row."
        ),
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, description=f"{name} is a non-negative count.")
        for name in COUNT_COLUMNS
    ]
    expectations += [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=larger, column_B=smaller, or_equal=True, description=rule)
        for rule, (larger, smaller) in ORDERINGS.items()
    ]
    expectations += [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A=name,
            column_B=f"sum_of_{name}",
            ignore_row_if="either_value_is_missing",
            description=f"{name} of the report total = the sum of the agency rows.",
        )
        for name in COUNT_COLUMNS
    ]
    expectations += [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A=f"{rate}_stated",
            column_B=f"{rate}_recomputed",
            ignore_row_if="both_values_are_missing",
            description=(
                f"{rate} = {numerator} / {denominator} × 100, 2 decimals half-up; absent when {denominator} is 0."
            ),
        )
        for rate, (numerator, denominator) in RATES.items()
    ]
    return expectations
