"""The yearly self-assessment scores (ICT_RANKING, EGOV_MATURITY) as the workbook sources store them:
per report and period in `agency_scores`, replaced whole on every load, so a rerun leaves one copy.
The reports read them back (`baocao.reports.scores`) when they are aggregated."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from baocao.core.periods import Period
from baocao.core.report import ReportType
from baocao.core.tables import SCORE_COLUMNS, agency_scores
from baocao.storage import locks


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
