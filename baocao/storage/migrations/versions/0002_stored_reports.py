"""Stored reports: every report aggregate assembles, as immutable versions named by their content's hash.

`report_versions` holds each version (layout, completeness, the batches and watermarks read, when it
was aggregated and validated), `report_lines` its lines as JSON objects, `report_heads` the version
each report and period stands at; `submissions.report_hash` names the version a payload was rendered
from. Periods aggregated before this revision have no stored version (their rows stay in
`report_tthc_rows`): their next run aggregates them again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("report_type", sa.String(32), nullable=False),
        sa.Column("period_id", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("layout", sa.Text, nullable=False),
        sa.Column("completeness", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("aggregated_at", sa.DateTime, nullable=False),
        sa.Column("validated_at", sa.DateTime),
        sa.Column("data_docs", sa.String(1000)),
    )
    op.create_index("ix_report_versions_content_hash", "report_versions", ["content_hash"])
    op.create_index("ix_report_versions_period", "report_versions", ["report_type", "period_id", "regime"])
    op.create_table(
        "report_lines",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("version_id", "table_name", "line"),
        sa.ForeignKeyConstraint(["version_id"], ["report_versions.id"]),
    )
    op.create_table(
        "report_heads",
        sa.Column("report_type", sa.String(32), nullable=False),
        sa.Column("period_id", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("aggregated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("report_type", "period_id", "regime"),
    )
    op.add_column("submissions", sa.Column("report_hash", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("report_hash")
    op.drop_table("report_heads")
    op.drop_table("report_lines")
    op.drop_index("ix_report_versions_period", "report_versions")
    op.drop_index("ix_report_versions_content_hash", "report_versions")
    op.drop_table("report_versions")
