"""The yearly self-assessment reports' inputs: the scores stored per report and period in
`agency_scores` (by the workbook sources' extract), and who reported them."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from baocao.core.periods import Period
from baocao.core.report import Completeness, ReportType
from baocao.core.tables import agency_scores
from baocao.reports.definition import ReportContext


def read_scores(
    connection: Connection, report_type: ReportType, period: Period, columns: Sequence[str]
) -> pd.DataFrame:
    """The period's stored scores for the report, as the columns its assembly takes."""
    table = agency_scores
    rows = connection.execute(
        sa.select(table).where(
            table.c.report_type == report_type.value,
            table.c.period_id == period.id,
            table.c.regime == period.regime.value,
        )
    ).mappings()
    frame = pd.DataFrame([dict(row) for row in rows], columns=[c.name for c in table.columns])
    return frame[list(columns)]


def scores_completeness(scores: pd.DataFrame, context: ReportContext) -> Completeness:
    """Expected = agencies active in the period; reported = those with scores."""
    expected = [agency.code for agency in context.registry.active(context.period)]
    reported = set(scores["code"]) if len(scores) else set()
    missing = tuple(code for code in expected if code not in reported)
    return Completeness(expected=len(expected), reported=len(set(expected) & reported), missing=missing)


def agencies_per_block(agencies: pd.DataFrame) -> dict[str, int]:
    return {f"agencies in {block}": int(n) for block, n in agencies.groupby("block").size().items()}
