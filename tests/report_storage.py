"""Test helpers for stored reports (`baocao.storage.reports`): store an altered version, as an
aggregation that got a figure wrong would, and read a version's lines back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from baocao.core.report import Report
from baocao.core.settings import Config
from baocao.core.tables import report_heads, report_lines, report_versions
from baocao.run import pipeline
from baocao.storage import reports as stored_reports
from baocao.storage import warehouse


def store_altered(
    config: Config, report_type: str, period_id: str, change: Callable[[pd.DataFrame], None], table: str = "report"
) -> str:
    """Store the period's current report with `change` applied to one of its tables (in place), as the
    period's new current version; returns its hash. It is not validated."""
    stored = pipeline.load_report(config, report_type, period_id).report
    frame = stored.tables[table].copy()
    change(frame)
    altered = Report(stored.report_type, stored.period, {**stored.tables, table: frame}, stored.completeness)
    return stored_reports.store(pipeline.engine_for(config), altered, {}, warehouse.utc_now())


def current_lines(engine: sa.Engine, report_type: str, period_id: str, table: str = "report") -> list[dict[str, Any]]:
    """The lines of the period's current stored version, as stored (JSON objects)."""
    head, v, lines = report_heads.c, report_versions.c, report_lines.c
    query = (
        sa.select(lines.data)
        .select_from(report_lines.join(report_versions, v.id == lines.version_id))
        .join(report_heads, sa.and_(head.content_hash == v.content_hash, head.report_type == v.report_type))
        .where(head.report_type == report_type, head.period_id == period_id, lines.table_name == table)
        .order_by(lines.line)
    )
    with engine.connect() as connection:
        return [json.loads(text) for text in connection.execute(query).scalars()]
