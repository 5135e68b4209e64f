"""The yearly self-assessment reports (ICT_RANKING, EGOV_MATURITY): scores in, ranked report out.

Scores arrive once a year in workbooks; they are stored per report and period in `agency_scores`
(replaced whole on every load, so a rerun leaves one copy), then assembled, checked and rendered
through the same ledger and publication path as every report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.engine import Engine

from baocao.core.periods import Period
from baocao.core.report import ReportType
from baocao.core.tables import SCORE_COLUMNS, agency_scores
from baocao.expectations import egov_maturity as egov_rules
from baocao.expectations import ict_ranking as ict_rules
from baocao.storage import locks
from baocao.transforms import egov_maturity, ict_ranking


@dataclass(frozen=True)
class YearlyReport:
    """How one yearly report is assembled, checked and rendered."""

    report_type: ReportType
    input_columns: tuple[str, ...]
    assemble: Callable[[pd.DataFrame, Period], Any]
    check_frame: Callable[[Any], pd.DataFrame]
    suite: Callable[[], list[gxe.Expectation]]
    suite_name: str
    row_label: str
    body_element: str
    body_key: str
    xml_body: Callable[[etree._Element, Any], None]
    json_body: Callable[[Any], dict[str, Any]]


YEARLY_REPORTS: dict[ReportType, YearlyReport] = {
    ReportType.ICT_RANKING: YearlyReport(
        report_type=ReportType.ICT_RANKING,
        input_columns=ict_ranking.INPUT_COLUMNS,
        assemble=ict_ranking.assemble_ict_ranking,
        check_frame=ict_rules.report_check_frame,
        suite=ict_rules.report_suite,
        suite_name=ict_rules.SUITE_NAME,
        row_label=ict_rules.ROW_LABEL,
        body_element="IctRanking",
        body_key="ict_ranking",
        xml_body=ict_ranking.ict_xml_body,
        json_body=ict_ranking.ict_json_body,
    ),
    ReportType.EGOV_MATURITY: YearlyReport(
        report_type=ReportType.EGOV_MATURITY,
        input_columns=egov_maturity.INPUT_COLUMNS,
        assemble=egov_maturity.assemble_egov_maturity,
        check_frame=lambda report: egov_rules.report_check_frame(*report),
        suite=egov_rules.report_suite,
        suite_name=egov_rules.SUITE_NAME,
        row_label=egov_rules.ROW_LABEL,
        body_element="EgovMaturity",
        body_key="egov_maturity",
        xml_body=egov_maturity.egov_xml_body,
        json_body=egov_maturity.egov_json_body,
    ),
}


def store_scores(
    engine: Engine,
    report_type: ReportType,
    period: Period,
    source: str,
    batch_id: str,
    scores: Sequence[dict[str, Any]],
) -> int:
    """Replace the period's scores for this report in one transaction; two loads at once take turns."""
    rows = [
        {
            "report_type": report_type.value,
            "period_id": period.id,
            "regime": period.regime.value,
            "code": row["code"],
            "block": row["block"],
            "name": row["name"],
            **{name: (Decimal(str(row[name])) if row.get(name) is not None else None) for name in SCORE_COLUMNS},
            "level": row.get("level"),
            "source": source,
            "batch_id": batch_id,
        }
        for row in scores
    ]
    table = agency_scores
    key = f"{table.name}:{report_type.value}:{period.id}:{period.regime.value}"
    with locks.exclusive(engine, key) as connection:
        connection.execute(
            sa.delete(table).where(
                table.c.report_type == report_type.value,
                table.c.period_id == period.id,
                table.c.regime == period.regime.value,
            )
        )
        if rows:
            connection.execute(sa.insert(table), rows)
    return len(rows)
