"""SERVICE_INDEX (Decision 766): the service index per agency and for the province, scored by the
ruleset in effect at the period's end (`transforms/rulesets/service_index/`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from baocao.core.layouts.service_index import DOSSIERS_IN_PERIOD, Kind, Line
from baocao.core.report import Completeness, ReportType
from baocao.expectations import service_index as rules
from baocao.reports.definition import ReportContext, ReportDefinition, one_table, query_frame, the_table
from baocao.transforms.service_index import (
    assemble_service_index,
    input_columns,
    onto_units,
    ruleset_for,
    service_index_json_body,
    service_index_query,
    service_index_xml_body,
)
from baocao.transforms.tthc import completeness, moved_units


def read_inputs(context: ReportContext) -> pd.DataFrame:
    """The measures' numerators and denominators per agency. Counts still recorded under a merged or
    ended agency are matched with its successor's catalogue in the query (and moved in `assemble`)."""
    period = context.period
    ruleset = ruleset_for(period)  # the ruleset version in effect for the period (a file, not code)
    units = moved_units(context.registry, period, period.end)
    query = service_index_query(period, ruleset, petition_sources=context.petition_sources, units=units)
    return query_frame(context, query, list(input_columns(ruleset, petitions=bool(context.petition_sources))))


def assemble(inputs: pd.DataFrame, context: ReportContext) -> tuple[pd.DataFrame, Completeness]:
    period = context.period
    # Counts of merged or ended agencies go to the unit carrying their work at the period's end, before
    # assembly and completeness (so the successor has reported).
    moved = onto_units(inputs, context.registry, period, period.end)
    report = assemble_service_index(moved, period, province_code=context.province_code, ruleset=ruleset_for(period))
    served = pd.DataFrame({"agency": list(moved.loc[moved[DOSSIERS_IN_PERIOD] > 0, "agency"])})
    return report, completeness(served, context.registry, context.period)


def summary(report: pd.DataFrame) -> dict[str, Any]:
    province = report[(report["kind"] == Kind.PROVINCE) & (report["line"] != Line.METRIC)]
    index: dict[str, Any] = {str(line["group"] or "total"): str(line["score"]) for line in province.to_dict("records")}
    index["agencies"] = int(((report["kind"] == Kind.AGENCY) & (report["line"] == Line.TOTAL)).sum())
    return index


DEFINITION: ReportDefinition[pd.DataFrame] = ReportDefinition(
    report_type=ReportType.SERVICE_INDEX,
    read_inputs=read_inputs,
    assemble=assemble,
    tables=one_table,
    from_tables=the_table,
    check_frame=rules.report_check_frame,
    suite=rules.report_suite,
    suite_name=rules.SUITE_NAME,
    row_label=rules.ROW_LABEL,
    body_element="ServiceIndex",
    body_key="service_index",
    xml_body=service_index_xml_body,
    json_body=service_index_json_body,
    summary=summary,
)
