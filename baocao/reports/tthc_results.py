"""TTHC_RESULTS (form II.06a): dossiers received and resolved by agency and field in the period."""

from __future__ import annotations

from typing import Any

import pandas as pd

from baocao.core.layouts.tthc import COUNT_COLUMNS, Kind
from baocao.core.report import Completeness, ReportType
from baocao.expectations import tthc_report as rules
from baocao.reports.definition import ReportContext, ReportDefinition, one_table, query_frame, the_table
from baocao.transforms import render
from baocao.transforms.tthc import assemble_tthc_report, completeness, tthc_rows_query


def read_inputs(context: ReportContext) -> pd.DataFrame:
    """One GROUP BY in the warehouse: every dossier classified against the period, per agency × field."""
    return query_frame(context, tthc_rows_query(context.period), ["agency", "field", "field_name", *COUNT_COLUMNS])


def assemble(grouped: pd.DataFrame, context: ReportContext) -> tuple[pd.DataFrame, Completeness]:
    report = assemble_tthc_report(grouped, context.registry, context.period)
    rows = report[report["kind"] == Kind.ROW]
    return report, completeness(rows, context.registry, context.period)


def summary(report: pd.DataFrame) -> dict[str, Any]:
    total = report[report["kind"] == Kind.TOTAL].iloc[0]
    values: dict[str, Any] = {name: int(total[name]) for name in COUNT_COLUMNS}
    values["on_time_rate"] = None if total["on_time_rate"] is None else str(total["on_time_rate"])
    return values


DEFINITION: ReportDefinition[pd.DataFrame] = ReportDefinition(
    report_type=ReportType.TTHC_RESULTS,
    read_inputs=read_inputs,
    assemble=assemble,
    tables=one_table,
    from_tables=the_table,
    check_frame=rules.report_check_frame,
    suite=rules.report_suite,
    suite_name=rules.SUITE_NAME,
    row_label=rules.ROW_LABEL,
    body_element=render.TTHC_BODY_ELEMENT,
    body_key=render.TTHC_BODY_KEY,
    xml_body=render.tthc_xml_body,
    json_body=render.tthc_json_body,
    summary=summary,
)
