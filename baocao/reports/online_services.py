"""ONLINE_SERVICES: the catalogue's online services per agency, those used in the period, and the
online share of dossiers and payments."""

from __future__ import annotations

from typing import Any

import pandas as pd

from baocao.core.layouts.online_services import COUNT_COLUMNS, Kind
from baocao.core.report import Completeness, ReportType
from baocao.expectations import online_services as rules
from baocao.reports.definition import ReportContext, ReportDefinition, one_table, query_frame, the_table
from baocao.transforms.online_services import (
    assemble_online_services,
    online_json_body,
    online_services_query,
    online_xml_body,
)
from baocao.transforms.tthc import completeness


def read_inputs(context: ReportContext) -> pd.DataFrame:
    return query_frame(context, online_services_query(context.period), ["agency", *COUNT_COLUMNS])


def assemble(grouped: pd.DataFrame, context: ReportContext) -> tuple[pd.DataFrame, Completeness]:
    report = assemble_online_services(grouped, context.period)
    agencies = report[report["kind"] == Kind.AGENCY]
    # An agency "reported" when it had dossiers in the period.
    served = pd.DataFrame({"agency": list(agencies.loc[agencies["dossiers_total"] > 0, "agency"])})
    return report, completeness(served, context.registry, context.period)


def summary(report: pd.DataFrame) -> dict[str, Any]:
    total = report[report["kind"] == Kind.TOTAL].iloc[0]
    return {name: int(total[name]) for name in COUNT_COLUMNS}


DEFINITION: ReportDefinition[pd.DataFrame] = ReportDefinition(
    report_type=ReportType.ONLINE_SERVICES,
    read_inputs=read_inputs,
    assemble=assemble,
    tables=one_table,
    from_tables=the_table,
    check_frame=rules.report_check_frame,
    suite=rules.report_suite,
    suite_name=rules.SUITE_NAME,
    row_label=rules.ROW_LABEL,
    body_element="OnlineServices",
    body_key="online_services",
    xml_body=online_xml_body,
    json_body=online_json_body,
    summary=summary,
)
