"""The warehouse's tables (SQLAlchemy Core): batches, canonical dossiers, the procedure catalogue and
its history, petitions, quarantine, watermarks, report rows, yearly scores and the submission ledger.

Definitions only: the core states what is stored; `baocao.storage` writes it and the transforms
query it. The schema itself is created and upgraded by the migrations in `baocao.storage`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from baocao.core.canonical import Col
from baocao.core.layouts.tthc import COUNT_COLUMNS

metadata = sa.MetaData()


def _dossier_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column(Col.AGENCY_CODE, sa.String(32)),
        sa.Column(Col.PROCEDURE_CODE, sa.String(64)),
        sa.Column(Col.FIELD_CODE, sa.String(64)),
        sa.Column(Col.FIELD_NAME, sa.String(500)),
        sa.Column(Col.CHANNEL, sa.String(32)),
        sa.Column(Col.STATUS, sa.String(32)),
        sa.Column(Col.RECEIVED_AT, sa.DateTime),
        sa.Column(Col.DUE_AT, sa.DateTime),
        sa.Column(Col.FINISHED_AT, sa.DateTime),
        sa.Column(Col.FEE_REQUIRED, sa.Boolean),
        sa.Column(Col.PAID_ONLINE, sa.Boolean),
        sa.Column(Col.DIGITIZED, sa.Boolean),
        sa.Column(Col.RESULT_ELECTRONIC, sa.Boolean),
        sa.Column(Col.RATING, sa.Integer),
        sa.Column(Col.UPDATED_AT, sa.DateTime),
        sa.Column(Col.DELETED, sa.Boolean, nullable=False, default=False),
    ]


batches = sa.Table(
    "batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # STAGED → MERGED
    sa.Column("window_from", sa.DateTime),
    sa.Column("window_to", sa.DateTime, nullable=False),
    sa.Column("pulled", sa.Integer, nullable=False, default=0),
    sa.Column("staged", sa.Integer, nullable=False, default=0),
    sa.Column("quarantined", sa.Integer, nullable=False, default=0),
    sa.Column("merged", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
)


dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column(Col.CODE, sa.String(100), primary_key=True),
    *_dossier_columns(),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),  # the batch that last wrote this dossier
    sa.Index("ix_dossiers_received", Col.RECEIVED_AT),
)


# The procedure catalogue (TTHC) as each source publishes it: one row per procedure and agency.
procedures = sa.Table(
    "procedures",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("agency_code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(1000)),
    sa.Column("field_code", sa.String(64)),
    sa.Column("online_type", sa.String(16), nullable=False),  # FULL | PARTIAL | NONE
    sa.Column("fee_required", sa.Boolean),
    sa.Column("online_payment", sa.Boolean),
    sa.Column("published_on_time", sa.Boolean),
    sa.Column("publication_updated_on_time", sa.Boolean),
    sa.Column("content_complete", sa.Boolean),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
)


# Every version of every catalogue entry, with the local time (naive, UTC+7) from which and until
# which it was the published one: `procedures` is the catalogue now, this is its history, so that a
# period aggregated again later (a correction) counts the catalogue it was first reported with
# (`catalogue_at`). One row per entry per change, written by `replace_procedures`.
procedure_history = sa.Table(
    "procedure_history",
    metadata,
    *[sa.Column(column.name, column.type, primary_key=column.primary_key) for column in procedures.columns],
    sa.Column("valid_from", sa.DateTime, primary_key=True),
    sa.Column("valid_to", sa.DateTime),  # NULL: the entry as published now
)


# When each source's catalogue was stored (local naive time), changed or not.
catalogue_imports = sa.Table(
    "catalogue_imports",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("imported_at", sa.DateTime, primary_key=True),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
)


# Petitions (phản ánh, kiến nghị) from the feedback system's export (`petition_csv`), upserted by code
# (`baocao.run.sources.petitions`). No personal data: the export has none, and only these columns are stored.
# Times are naive local (UTC+7); a deadline given as a date is stored as the end of that day.
petitions = sa.Table(
    "petitions",
    metadata,
    sa.Column("code", sa.String(100), primary_key=True),  # ma_phan_anh, as written (leading zeros kept)
    sa.Column("agency_code", sa.String(32), nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("due_at", sa.DateTime, nullable=False),
    sa.Column("answered_at", sa.DateTime),  # NULL: not answered yet
    sa.Column("satisfied", sa.Boolean),  # NULL: not rated
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),  # the batch that last wrote this petition
    sa.Index("ix_petitions_due", "due_at"),
)


quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # extract | validate
    sa.Column("record_key", sa.String(100), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("detail", sa.String(1000), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)


source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("watermark", sa.DateTime, nullable=False),  # window_to of the last merged batch
    sa.Column("batch_id", sa.String(64), nullable=False),
)


report_tthc_rows = sa.Table(
    "report_tthc_rows",
    metadata,
    sa.Column("period_id", sa.String(16), primary_key=True),
    sa.Column("regime", sa.String(16), primary_key=True),
    sa.Column("agency", sa.String(32), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("field_name", sa.String(500), nullable=False),
    *[sa.Column(name, sa.Integer, nullable=False) for name in COUNT_COLUMNS],
    sa.Column("on_time_rate", sa.Numeric(5, 2)),
    sa.Column("computed_at", sa.DateTime, nullable=False),
)


submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report_type", sa.String(32), nullable=False),
    sa.Column("period_id", sa.String(16), nullable=False),
    sa.Column("regime", sa.String(16), nullable=False),
    sa.Column("sender", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Set while the submission is live; cleared when it is rejected so a fixed one can take its place.
    # NULLs are never equal, so the unique constraint holds only for live submissions.
    sa.Column("live_slot", sa.String(200), unique=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("submission_id", sa.String(64), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    # The detached JWS of a signed JSON payload (sent in JWS-Signature); NULL when unsigned or XML.
    sa.Column("signature", sa.Text),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("supersedes", sa.String(128)),
    # The stored report version (`report_versions.content_hash`) this payload was rendered from.
    sa.Column("report_hash", sa.String(64)),
    sa.Column("state", sa.String(16), nullable=False),  # FROZEN → ACCEPTED | REJECTED | FAILED
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("receipt_id", sa.String(128)),
    sa.Column("receipt", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


submission_attempts = sa.Table(
    "submission_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
)


PROCEDURE_COLUMNS = (
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
)


SCORE_COLUMNS = ("infrastructure", "human_resources", "applications", "policy", "readiness_score")


agency_scores = sa.Table(
    "agency_scores",
    metadata,
    sa.Column("report_type", sa.String(32), primary_key=True),
    sa.Column("period_id", sa.String(16), primary_key=True),
    sa.Column("regime", sa.String(16), primary_key=True),
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("block", sa.String(16), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    *[sa.Column(name, sa.Numeric(12, 3)) for name in SCORE_COLUMNS],
    sa.Column("level", sa.String(16)),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
)


# Every report as aggregate stored it, one version per distinct content: the lines of its tables (JSON
# objects, one per line) and what was read to compute it. A version is immutable and named by the hash
# of its content as stored; validate_report marks the version the report suite approved, render sends
# exactly that version, and the ledger names it on each submission (`submissions.report_hash`).
report_versions = sa.Table(
    "report_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(64), index=True),  # NULL only while the version is being written
    sa.Column("report_type", sa.String(32), nullable=False),
    sa.Column("period_id", sa.String(16), nullable=False),
    sa.Column("regime", sa.String(16), nullable=False),
    sa.Column("layout", sa.Text, nullable=False),  # JSON: table → columns, and those holding decimals
    sa.Column("completeness", sa.Text, nullable=False),  # JSON: expected, reported, missing codes
    sa.Column("inputs", sa.Text, nullable=False),  # JSON: per source, the last batch merged and its watermark
    sa.Column("aggregated_at", sa.DateTime, nullable=False),
    sa.Column("validated_at", sa.DateTime),  # NULL: the report suite has not approved this content
    sa.Column("data_docs", sa.String(1000)),
    sa.Index("ix_report_versions_period", "report_type", "period_id", "regime"),
)
report_lines = sa.Table(
    "report_lines",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("report_versions.id"), primary_key=True),
    sa.Column("table_name", sa.String(32), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),  # JSON object: the line's columns; decimals as text
)
# The version each report and period stands at: the last aggregation's.
report_heads = sa.Table(
    "report_heads",
    metadata,
    sa.Column("report_type", sa.String(32), primary_key=True),
    sa.Column("period_id", sa.String(16), primary_key=True),
    sa.Column("regime", sa.String(16), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("aggregated_at", sa.DateTime, nullable=False),
)
