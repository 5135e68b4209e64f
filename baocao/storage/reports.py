"""Stored reports: every report as aggregate assembled it, kept as an immutable version named by the
hash of its content, so that what the report suite approved is exactly what render sends and export
writes.

A version's lines are JSON objects, one per line of each of its tables (decimals as text, listed in
the version's layout so they come back as decimals). The hash covers the report's identity, the
layout, the completeness and every line as stored: a version read back and hashed again shows
whether anything changed since it was written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from baocao.core.errors import FatalError
from baocao.core.periods import Period
from baocao.core.report import Completeness, Report, ReportType
from baocao.core.tables import batches, report_heads, report_lines, report_versions, submissions
from baocao.storage import locks

# ---------------------------------------------------------------- the codec


def _plain(value: Any) -> Any:
    """A cell as JSON holds it; None for missing values (NaN, NaT, pandas' NA)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return value
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Encoded:
    """A report in its stored form: the layout, the completeness and each table's lines as JSON text."""

    layout: str
    completeness: str
    lines: Mapping[str, Sequence[str]]


def encode(report: Report) -> Encoded:
    layout: dict[str, Any] = {}
    lines: dict[str, list[str]] = {}
    for name, frame in report.tables.items():
        columns = [str(column) for column in frame.columns]
        decimals = [column for column in columns if any(isinstance(value, Decimal) for value in frame[column].tolist())]
        layout[name] = {"columns": columns, "decimals": decimals}
        lines[name] = [
            json.dumps(dict(zip(columns, (_plain(value) for value in row), strict=True)), ensure_ascii=False)
            for row in frame.itertuples(index=False, name=None)
        ]
    found = report.completeness
    completeness = {"expected": found.expected, "reported": found.reported, "missing": list(found.missing)}
    return Encoded(
        json.dumps(layout, ensure_ascii=False, sort_keys=True),
        json.dumps(completeness, ensure_ascii=False),
        lines,
    )


def content_hash(report_type: ReportType | str, period: Period, encoded: Encoded) -> str:
    digest = hashlib.sha256()
    for part in (str(report_type), period.id, period.regime.value, encoded.layout, encoded.completeness):
        digest.update(part.encode("utf-8") + b"\x1e")
    for name in sorted(encoded.lines):
        digest.update(name.encode("utf-8") + b"\x1d")
        for line in encoded.lines[name]:
            digest.update(line.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def decode(report_type: ReportType, period: Period, encoded: Encoded) -> Report:
    layout = json.loads(encoded.layout)
    tables: dict[str, pd.DataFrame] = {}
    for name, shape in layout.items():
        decimals = set(shape["decimals"])
        rows = []
        for text in encoded.lines.get(name, ()):
            line = json.loads(text)
            rows.append(
                {
                    column: Decimal(line[column]) if column in decimals and line[column] is not None else line[column]
                    for column in shape["columns"]
                }
            )
        frame = pd.DataFrame(rows, columns=shape["columns"])
        # Cells stay the Python values they were stored as (ints, text, decimals, None), as assembled.
        tables[name] = frame.astype(object).where(frame.notna(), None) if len(frame) else frame
    found = json.loads(encoded.completeness)
    completeness = Completeness(found["expected"], found["reported"], tuple(found["missing"]))
    return Report(report_type, period, tables, completeness)


# ---------------------------------------------------------------- versions in the warehouse


@dataclass(frozen=True)
class StoredReport:
    """One stored version of a report, read back and checked against its hash."""

    report: Report
    content_hash: str
    aggregated_at: datetime
    validated_at: datetime | None
    inputs: Mapping[str, Any]
    data_docs: str | None

    @property
    def validated(self) -> bool:
        return self.validated_at is not None


def sources_read(connection: Connection, sources: Sequence[str]) -> dict[str, Any]:
    """Per source, the last batch stored or merged and its watermark: what an aggregation read."""
    found: dict[str, Any] = {}
    for source in sources:
        last = connection.execute(
            sa.select(batches.c.batch_id, batches.c.window_to)
            .where(batches.c.source == source, batches.c.state.in_(("MERGED", "STORED")))
            .order_by(batches.c.finished_at.desc(), batches.c.batch_id.desc())
            .limit(1)
        ).first()
        found[source] = {"batch": last.batch_id, "watermark": last.window_to.isoformat()} if last is not None else None
    return found


def store(engine: Engine, report: Report, inputs: Mapping[str, Any], at: datetime) -> str:
    """Store the report as its period's current version and return its hash.

    The hash is taken over the lines as the warehouse holds them once written (read back in the same
    transaction), so a version is named by what is stored; one with the same content as a version kept
    already is that version. Versions of the period that nothing points to any more are dropped."""
    encoded = encode(report)
    period = report.period
    key = (str(report.report_type), period.id, period.regime.value)
    v = report_versions.c
    # Two aggregations of one period at once (a backfill beside the scheduled run) take turns.
    with locks.exclusive(engine, "report:" + ":".join(key)) as connection:
        version_id = connection.execute(
            sa.insert(report_versions)
            .values(
                report_type=key[0],
                period_id=key[1],
                regime=key[2],
                layout=encoded.layout,
                completeness=encoded.completeness,
                inputs=json.dumps(inputs, ensure_ascii=False, sort_keys=True),
                aggregated_at=at,
            )
            .returning(v.id)
        ).scalar_one()
        rows = [
            {"version_id": version_id, "table_name": name, "line": number, "data": text}
            for name, texts in encoded.lines.items()
            for number, text in enumerate(texts)
        ]
        for offset in range(0, len(rows), 5000):
            connection.execute(sa.insert(report_lines), rows[offset : offset + 5000])
        digest = content_hash(report.report_type, period, _read_encoded(connection, version_id))
        same = connection.execute(
            sa.select(v.id).where(v.content_hash == digest, v.report_type == key[0], v.period_id == key[1]).limit(1)
        ).scalar_one_or_none()
        if same is not None:  # stored before: keep that version (and whether it was validated)
            _drop_versions(connection, [version_id])
        else:
            connection.execute(sa.update(report_versions).where(v.id == version_id).values(content_hash=digest))
        head = report_heads.c
        moved = connection.execute(
            sa.update(report_heads)
            .where(head.report_type == key[0], head.period_id == key[1], head.regime == key[2])
            .values(content_hash=digest, aggregated_at=at)
        )
        if moved.rowcount == 0:
            connection.execute(
                sa.insert(report_heads).values(
                    report_type=key[0], period_id=key[1], regime=key[2], content_hash=digest, aggregated_at=at
                )
            )
        _drop_unused_versions(connection, key, keep=digest)
    return digest


def _read_encoded(connection: Connection, version_id: int) -> Encoded:
    version = connection.execute(
        sa.select(report_versions.c.layout, report_versions.c.completeness).where(report_versions.c.id == version_id)
    ).one()
    lines: dict[str, list[str]] = {}
    for row in connection.execute(
        sa.select(report_lines.c.table_name, report_lines.c.data)
        .where(report_lines.c.version_id == version_id)
        .order_by(report_lines.c.table_name, report_lines.c.line)
    ):
        lines.setdefault(row.table_name, []).append(row.data)
    return Encoded(version.layout, version.completeness, lines)


def _drop_versions(connection: Connection, ids: Sequence[int]) -> None:
    if ids:
        connection.execute(sa.delete(report_lines).where(report_lines.c.version_id.in_(ids)))
        connection.execute(sa.delete(report_versions).where(report_versions.c.id.in_(ids)))


def _drop_unused_versions(connection: Connection, key: tuple[str, str, str], keep: str) -> None:
    """Versions of the period other than the current one that no submission was rendered from."""
    v = report_versions.c
    sent = sa.select(submissions.c.report_hash).where(submissions.c.report_hash.is_not(None))
    unused = sa.select(v.id).where(
        v.report_type == key[0],
        v.period_id == key[1],
        v.regime == key[2],
        v.content_hash != keep,
        v.content_hash.not_in(sent),
    )
    _drop_versions(connection, list(connection.execute(unused).scalars()))


def current_hash(engine: Engine, report_type: ReportType | str, period: Period) -> str | None:
    head = report_heads.c
    with engine.connect() as connection:
        found: str | None = connection.execute(
            sa.select(head.content_hash).where(
                head.report_type == str(report_type), head.period_id == period.id, head.regime == period.regime.value
            )
        ).scalar_one_or_none()
    return found


def load(engine: Engine, report_type: ReportType, period: Period, digest: str | None = None) -> StoredReport:
    """The period's current version (or the version `digest`), read back and checked against its hash.

    A period never aggregated is refused, as is a version whose lines no longer match its hash."""
    what = f"{report_type} {period.id}"
    chosen = digest or current_hash(engine, report_type, period)
    if chosen is None:
        raise FatalError(f"{what}: no stored report (the period was never aggregated: run `baocao run` first)")
    v = report_versions.c
    with engine.connect() as connection:
        version = (
            connection.execute(
                sa.select(report_versions).where(
                    v.content_hash == chosen, v.report_type == str(report_type), v.period_id == period.id
                )
            )
            .mappings()
            .first()
        )
        if version is None:
            raise FatalError(f"{what}: no stored report version {chosen[:12]}")
        encoded = _read_encoded(connection, version["id"])
    if content_hash(report_type, period, encoded) != chosen:
        raise FatalError(
            f"{what}: the stored report {chosen[:12]} no longer matches its hash (its lines were changed in the "
            "warehouse after aggregation): aggregate and validate the period again"
        )
    return StoredReport(
        report=decode(report_type, period, encoded),
        content_hash=chosen,
        aggregated_at=version["aggregated_at"],
        validated_at=version["validated_at"],
        inputs=json.loads(version["inputs"]),
        data_docs=version["data_docs"],
    )


def mark_validated(engine: Engine, digest: str, at: datetime, data_docs: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(report_versions)
            .where(report_versions.c.content_hash == digest)
            .values(validated_at=at, data_docs=data_docs)
        )


def listing(engine: Engine, report_type: str | None = None, period_id: str | None = None) -> list[dict[str, Any]]:
    """Each report and period's current version: when it was aggregated and whether it was validated."""
    head, v = report_heads.c, report_versions.c
    query = (
        sa.select(head.report_type, head.period_id, head.regime, head.content_hash, head.aggregated_at, v.validated_at)
        .join(report_versions, sa.and_(v.content_hash == head.content_hash, v.report_type == head.report_type))
        .order_by(head.report_type, head.period_id)
    )
    if report_type:
        query = query.where(head.report_type == report_type)
    if period_id:
        query = query.where(head.period_id == period_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
