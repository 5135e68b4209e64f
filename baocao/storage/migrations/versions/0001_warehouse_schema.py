"""The warehouse schema as commit 5277557 created it; warehouses made before the migrations adopted.

Before this revision the schema was made at connect: `metadata.create_all` (missing tables only), then
`ALTER TABLE` for the columns added to a table after it first shipped (`submissions.signature`), then
the catalogue history backfilled when no catalogue import was recorded yet. Such a warehouse has some
or all of these tables and no `alembic_version`: the tables it has are kept as they are, the ones it
lacks are created, the late columns added, and its stored catalogue becomes the first version of
every entry, exactly what connect did; then it is stamped 0001 like a new one.

The DDL is written out here, not taken from `baocao.core.tables`: a revision is what the schema was
at that point, and the table definitions move on.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Catalogue times are naive local time, UTC+7 (`baocao.core.canonical.LOCAL_TIMEZONE` at this revision).
_LOCAL_TIMEZONE = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

_PROCEDURE_COLUMNS = (
    "code",
    "agency_code",
    "name",
    "field_code",
    "online_type",
    "fee_required",
    "online_payment",
    "published_on_time",
    "publication_updated_on_time",
    "content_complete",
    "source",
    "batch_id",
)
_TTHC_COUNT_COLUMNS = (
    "received_total",
    "received_online",
    "received_direct",
    "carried_over",
    "resolved_total",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "in_progress_total",
    "in_progress_within",
    "in_progress_overdue",
)
_SCORE_COLUMNS = ("infrastructure", "human_resources", "applications", "policy", "readiness_score")


def _batches() -> None:
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window_from", sa.DateTime),
        sa.Column("window_to", sa.DateTime, nullable=False),
        sa.Column("pulled", sa.Integer, nullable=False),
        sa.Column("staged", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("merged", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.PrimaryKeyConstraint("batch_id"),
    )


def _dossiers() -> None:
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("agency_code", sa.String(32)),
        sa.Column("procedure_code", sa.String(64)),
        sa.Column("field_code", sa.String(64)),
        sa.Column("field_name", sa.String(500)),
        sa.Column("channel", sa.String(32)),
        sa.Column("status", sa.String(32)),
        sa.Column("received_at", sa.DateTime),
        sa.Column("due_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("fee_required", sa.Boolean),
        sa.Column("paid_online", sa.Boolean),
        sa.Column("digitized", sa.Boolean),
        sa.Column("result_electronic", sa.Boolean),
        sa.Column("rating", sa.Integer),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_dossiers_received", "dossiers", ["received_at"])


def _procedure_columns(required: bool) -> list[sa.Column[Any]]:
    """The catalogue entry's columns; `procedure_history` has them all nullable but its key (its
    definition copied only the types and the primary key of `procedures`)."""
    return [
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(1000)),
        sa.Column("field_code", sa.String(64)),
        sa.Column("online_type", sa.String(16), nullable=not required),
        sa.Column("fee_required", sa.Boolean),
        sa.Column("online_payment", sa.Boolean),
        sa.Column("published_on_time", sa.Boolean),
        sa.Column("publication_updated_on_time", sa.Boolean),
        sa.Column("content_complete", sa.Boolean),
        sa.Column("source", sa.String(100), nullable=not required),
        sa.Column("batch_id", sa.String(64), nullable=not required),
    ]


def _procedures() -> None:
    op.create_table("procedures", *_procedure_columns(True), sa.PrimaryKeyConstraint("code", "agency_code"))


def _procedure_history() -> None:
    op.create_table(
        "procedure_history",
        *_procedure_columns(False),
        sa.Column("valid_from", sa.DateTime, nullable=False),
        sa.Column("valid_to", sa.DateTime),
        sa.PrimaryKeyConstraint("code", "agency_code", "valid_from"),
    )


def _catalogue_imports() -> None:
    op.create_table(
        "catalogue_imports",
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("source", "imported_at"),
    )


def _petitions() -> None:
    op.create_table(
        "petitions",
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("agency_code", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("answered_at", sa.DateTime),
        sa.Column("satisfied", sa.Boolean),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_petitions_due", "petitions", ["due_at"])


def _quarantine() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("record_key", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quarantine_batch_id", "quarantine", ["batch_id"])


def _source_state() -> None:
    op.create_table(
        "source_state",
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("watermark", sa.DateTime, nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def _report_tthc_rows() -> None:
    op.create_table(
        "report_tthc_rows",
        sa.Column("period_id", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("field_name", sa.String(500), nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False) for name in _TTHC_COUNT_COLUMNS],
        sa.Column("on_time_rate", sa.Numeric(5, 2)),
        sa.Column("computed_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("period_id", "regime", "agency", "field"),
    )


def _submissions() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("report_type", sa.String(32), nullable=False),
        sa.Column("period_id", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("live_slot", sa.String(200)),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.Text),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("supersedes", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("receipt_id", sa.String(128)),
        sa.Column("receipt", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("live_slot"),
        sa.UniqueConstraint("idempotency_key"),
    )


def _submission_attempts() -> None:
    op.create_table(
        "submission_attempts",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("submission", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["submission"], ["submissions.id"]),
    )
    op.create_index("ix_submission_attempts_submission", "submission_attempts", ["submission"])


def _agency_scores() -> None:
    op.create_table(
        "agency_scores",
        sa.Column("report_type", sa.String(32), nullable=False),
        sa.Column("period_id", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("block", sa.String(16), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        *[sa.Column(name, sa.Numeric(12, 3)) for name in _SCORE_COLUMNS],
        sa.Column("level", sa.String(16)),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("report_type", "period_id", "regime", "code"),
    )


# Every table of the revision, those referenced before those that reference them.
_TABLES: dict[str, Callable[[], None]] = {
    "batches": _batches,
    "dossiers": _dossiers,
    "procedures": _procedures,
    "procedure_history": _procedure_history,
    "catalogue_imports": _catalogue_imports,
    "petitions": _petitions,
    "quarantine": _quarantine,
    "source_state": _source_state,
    "report_tthc_rows": _report_tthc_rows,
    "submissions": _submissions,
    "submission_attempts": _submission_attempts,
    "agency_scores": _agency_scores,
}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES.items():
        if name not in existing:
            create()
    # Added to a table that had shipped without it (connect's _ADDED_COLUMNS).
    if "submissions" in existing and "signature" not in _columns("submissions"):
        op.add_column("submissions", sa.Column("signature", sa.Text))
    _backfill_history()


def _columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _backfill_history() -> None:
    """A warehouse from before the catalogue history: its stored catalogue becomes the first version
    of each entry, imported now (nothing is known of its earlier states, so earlier periods count it,
    as they did before). A new warehouse has no catalogue, and one that recorded an import has its
    history already."""
    bind = op.get_bind()
    imports = sa.table(
        "catalogue_imports", sa.column("source"), sa.column("imported_at"), sa.column("batch_id"), sa.column("entries")
    )
    if bind.execute(sa.select(imports.c.source).limit(1)).first() is not None:
        return
    procedures = sa.table("procedures", *[sa.column(name) for name in _PROCEDURE_COLUMNS])
    history = sa.table("procedure_history", *[sa.column(name) for name in (*_PROCEDURE_COLUMNS, "valid_from")])
    now = datetime.now(_LOCAL_TIMEZONE).replace(tzinfo=None)
    stored = sa.select(*procedures.c, sa.literal(now, sa.DateTime).label("valid_from"))
    bind.execute(sa.insert(history).from_select([*_PROCEDURE_COLUMNS, "valid_from"], stored))
    sources = sa.select(
        procedures.c.source,
        sa.literal(now, sa.DateTime),
        sa.func.min(procedures.c.batch_id),
        sa.func.count(),
    ).group_by(procedures.c.source)
    bind.execute(sa.insert(imports).from_select(["source", "imported_at", "batch_id", "entries"], sources))


def downgrade() -> None:
    for name in reversed(_TABLES):
        op.drop_table(name)
