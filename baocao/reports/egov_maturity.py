"""EGOV_MATURITY: the yearly e-government maturity level of each agency, and the share of each level
per block. Stored as two tables, `agencies` and `summary`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from baocao.core.report import Completeness, ReportType
from baocao.expectations import egov_maturity as rules
from baocao.reports.definition import ReportContext, ReportDefinition
from baocao.reports.scores import agencies_per_block, read_scores, scores_completeness
from baocao.transforms import egov_maturity
from baocao.transforms.egov_maturity import EgovMaturityReport


def read_inputs(context: ReportContext) -> pd.DataFrame:
    return read_scores(context.connection, ReportType.EGOV_MATURITY, context.period, egov_maturity.INPUT_COLUMNS)


def assemble(scores: pd.DataFrame, context: ReportContext) -> tuple[EgovMaturityReport, Completeness]:
    return egov_maturity.assemble_egov_maturity(scores, context.period), scores_completeness(scores, context)


def tables(report: EgovMaturityReport) -> Mapping[str, pd.DataFrame]:
    return {"agencies": report.agencies, "summary": report.summary}


def from_tables(stored: Mapping[str, pd.DataFrame]) -> EgovMaturityReport:
    return EgovMaturityReport(stored["agencies"], stored["summary"])


def summary(report: EgovMaturityReport) -> dict[str, Any]:
    return agencies_per_block(report.agencies)


DEFINITION: ReportDefinition[EgovMaturityReport] = ReportDefinition(
    report_type=ReportType.EGOV_MATURITY,
    read_inputs=read_inputs,
    assemble=assemble,
    tables=tables,
    from_tables=from_tables,
    check_frame=lambda report: rules.report_check_frame(*report),
    suite=rules.report_suite,
    suite_name=rules.SUITE_NAME,
    row_label=rules.ROW_LABEL,
    body_element="EgovMaturity",
    body_key="egov_maturity",
    xml_body=egov_maturity.egov_xml_body,
    json_body=egov_maturity.egov_json_body,
    summary=summary,
)
