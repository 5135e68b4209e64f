"""ICT_RANKING: the yearly ICT readiness ranking of agencies, by block, from the self-assessment workbook."""

from __future__ import annotations

import pandas as pd

from baocao.core.report import Completeness, ReportType
from baocao.expectations import ict_ranking as rules
from baocao.reports.definition import ReportContext, ReportDefinition, one_table, the_table
from baocao.reports.scores import agencies_per_block, read_scores, scores_completeness
from baocao.transforms import ict_ranking


def read_inputs(context: ReportContext) -> pd.DataFrame:
    return read_scores(context.connection, ReportType.ICT_RANKING, context.period, ict_ranking.INPUT_COLUMNS)


def assemble(scores: pd.DataFrame, context: ReportContext) -> tuple[pd.DataFrame, Completeness]:
    return ict_ranking.assemble_ict_ranking(scores, context.period), scores_completeness(scores, context)


DEFINITION: ReportDefinition[pd.DataFrame] = ReportDefinition(
    report_type=ReportType.ICT_RANKING,
    read_inputs=read_inputs,
    assemble=assemble,
    tables=one_table,
    from_tables=the_table,
    check_frame=rules.report_check_frame,
    suite=rules.report_suite,
    suite_name=rules.SUITE_NAME,
    row_label=rules.ROW_LABEL,
    body_element="IctRanking",
    body_key="ict_ranking",
    xml_body=ict_ranking.ict_xml_body,
    json_body=ict_ranking.ict_json_body,
    summary=agencies_per_block,
)
