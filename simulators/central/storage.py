"""Persistence of the central sandbox through SQLAlchemy Core (SQLite file or PostgreSQL).

All state that must hold across worker processes lives here: idempotency records (the primary key
(sender, key) is the in-progress marker, so two simultaneous requests with one key cannot both
process), receipts with a unique (sender, report type, period, version), the exact body bytes of
every accepted version, and the sandbox's fault mode.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

logger = logging.getLogger(__name__)

metadata = MetaData()

idempotency_keys: Final = Table(
    "central_idempotency_keys",
    metadata,
    # The primary key is the claim: inserting it is how a request becomes the one that processes.
    Column("sender", String(32), primary_key=True),
    Column("idempotency_key", String(128), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # "processing" | "done"
    Column("claim_id", String(32), nullable=False),  # which attempt holds the processing marker
    Column("claimed_at", Float, nullable=False),  # epoch seconds; a stale marker may be taken over
    Column("created_at", Float, nullable=False, index=True),
    Column("finished_at", Float),
    Column("status_code", Integer),
    Column("response_body", LargeBinary),
    Column("location", String(300)),
)

receipts: Final = Table(
    "central_receipts",
    metadata,
    Column("receipt_id", String(64), primary_key=True),
    Column("sender", String(32), nullable=False),
    Column("report_type", String(32), nullable=False),
    Column("period_id", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("submission_id", Text, nullable=False),
    Column("supersedes", String(64)),
    Column("received_at", String(40), nullable=False),  # RFC 3339, UTC, as given in the receipt
    Column("sha256", String(64), nullable=False),
    Column("content_fingerprint", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    UniqueConstraint("sender", "report_type", "period_id", "version", name="uq_central_receipts_version"),
)

submission_bodies: Final = Table(
    "central_submission_bodies",
    metadata,
    Column("receipt_id", String(64), ForeignKey("central_receipts.receipt_id"), primary_key=True),
    Column("media_type", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),  # the exact bytes received
)

sandbox_mode: Final = Table(
    "central_sandbox_mode",
    metadata,
    Column("id", Integer, primary_key=True),  # a single row, id 1
    Column("mode", String(16), nullable=False),
    Column("retry_after", Integer, nullable=False),
    Column("overload_share", Float, nullable=False),
    Column("processing_delay", Float, nullable=False),
)

PROCESSING: Final = "processing"
DONE: Final = "done"


@dataclass(frozen=True)
class Claimed:
    """This request holds the processing marker for its key."""

    claim_id: str


@dataclass(frozen=True)
class Replay:
    """The key finished before with the same body: answer what was answered then."""

    status_code: int
    body: bytes
    location: str | None


@dataclass(frozen=True)
class InProgress:
    """Another request with the same key and body is still being processed."""


@dataclass(frozen=True)
class KeyReused:
    """The key was used before with a different body."""


Claim = Claimed | Replay | InProgress | KeyReused


@dataclass(frozen=True)
class ModeState:
    """The sandbox's fault injection, shared by all workers through the database."""

    mode: str
    retry_after: int
    overload_share: float
    processing_delay: float


class LostClaim(Exception):
    """The processing marker was taken over (it went stale); this attempt must not record anything."""


def create_database_engine(database_url: str, database_schema: str | None = None) -> Engine:
    """An engine for the sandbox; SQLite files get WAL and immediate write transactions."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("the central sandbox needs a SQLite file (several threads/processes share it)")
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _serialise_sqlite_transactions(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if database_schema:
        # Tables live in that schema (PostgreSQL); lets tests and demos share one database.
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{_identifier(database_schema)}"'))
        engine = engine.execution_options(schema_translate_map={None: database_schema})
    return engine


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _serialise_sqlite_transactions(engine: Engine) -> None:
    # pysqlite opens transactions lazily and upgrades read locks to write locks, which fails
    # immediately under concurrency ("database is locked"). BEGIN IMMEDIATE takes the write lock
    # up front and waits for it (busy timeout), so concurrent requests queue instead of failing.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Storage:
    """The sandbox's database operations; each public method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_tables(self) -> None:
        """Create missing tables; tolerate a concurrent worker creating them at the same time."""
        try:
            metadata.create_all(self.engine)
        except DBAPIError:
            metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # ------------------------------------------------------------ idempotency

    def claim(self, sender: str, key: str, body_sha256: str, now: float, lease_seconds: float) -> Claim:
        """Insert the processing marker for (sender, key), or report what holds that key already."""
        claim_id = secrets.token_hex(16)
        for _attempt in range(3):
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        insert(idempotency_keys).values(
                            sender=sender,
                            idempotency_key=key,
                            body_sha256=body_sha256,
                            state=PROCESSING,
                            claim_id=claim_id,
                            claimed_at=now,
                            created_at=now,
                        )
                    )
                return Claimed(claim_id)
            except IntegrityError:
                pass  # the key exists: look at it below
            with self.engine.begin() as connection:
                row = connection.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.sender == sender, idempotency_keys.c.idempotency_key == key
                    )
                ).one_or_none()
                if row is None:
                    continue  # purged in between: try the insert again
                if row.body_sha256 != body_sha256:
                    return KeyReused()
                if row.state == DONE:
                    return Replay(row.status_code, bytes(row.response_body), row.location)
                if row.claimed_at >= now - lease_seconds:
                    return InProgress()
                # The holder has been silent past the lease (crashed worker): take the marker over.
                taken = connection.execute(
                    update(idempotency_keys)
                    .where(
                        idempotency_keys.c.sender == sender,
                        idempotency_keys.c.idempotency_key == key,
                        idempotency_keys.c.claim_id == row.claim_id,
                        idempotency_keys.c.state == PROCESSING,
                    )
                    .values(claim_id=claim_id, claimed_at=now)
                )
                if taken.rowcount == 1:
                    logger.warning("took over a stale in-progress marker for sender %s", sender)
                    return Claimed(claim_id)
                return InProgress()
        return InProgress()

    def finish(
        self,
        connection: Connection,
        sender: str,
        key: str,
        claim_id: str,
        status_code: int,
        body: bytes,
        location: str | None,
    ) -> None:
        """Store the answer for (sender, key) in ``connection``'s transaction; ``LostClaim`` if not ours."""
        result = connection.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.sender == sender,
                idempotency_keys.c.idempotency_key == key,
                idempotency_keys.c.claim_id == claim_id,
                idempotency_keys.c.state == PROCESSING,
            )
            .values(
                state=DONE,
                status_code=status_code,
                response_body=body,
                location=location,
                finished_at=time.time(),
            )
        )
        if result.rowcount != 1:
            raise LostClaim()

    def release(self, sender: str, key: str, claim_id: str) -> None:
        """Drop our processing marker after an unexpected failure, so a retry can process afresh."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.sender == sender,
                    idempotency_keys.c.idempotency_key == key,
                    idempotency_keys.c.claim_id == claim_id,
                    idempotency_keys.c.state == PROCESSING,
                )
            )

    def purge_idempotency_keys(self, older_than: float) -> int:
        """Forget finished keys created before ``older_than`` (epoch seconds); returns how many."""
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.created_at < older_than, idempotency_keys.c.state == DONE
                )
            )
            return int(result.rowcount or 0)

    # ------------------------------------------------------------ receipts

    @staticmethod
    def receipt_for_version(
        connection: Connection, sender: str, report_type: str, period_id: str, version: int
    ) -> Row[Any] | None:
        return connection.execute(
            select(receipts).where(
                receipts.c.sender == sender,
                receipts.c.report_type == report_type,
                receipts.c.period_id == period_id,
                receipts.c.version == version,
            )
        ).one_or_none()

    @staticmethod
    def latest_receipt(connection: Connection, sender: str, report_type: str, period_id: str) -> Row[Any] | None:
        return connection.execute(
            select(receipts)
            .where(
                receipts.c.sender == sender,
                receipts.c.report_type == report_type,
                receipts.c.period_id == period_id,
            )
            .order_by(receipts.c.version.desc())
            .limit(1)
        ).one_or_none()

    @staticmethod
    def insert_receipt(connection: Connection, values: dict[str, Any], media_type: str, body: bytes) -> None:
        connection.execute(insert(receipts).values(**values))
        connection.execute(
            insert(submission_bodies).values(receipt_id=values["receipt_id"], media_type=media_type, body=body)
        )

    def get_receipt(self, sender: str, receipt_id: str) -> Row[Any] | None:
        with self.engine.begin() as connection:
            return connection.execute(
                select(receipts).where(and_(receipts.c.receipt_id == receipt_id, receipts.c.sender == sender))
            ).one_or_none()

    def list_receipts(self, sender: str, report_type: str, period_id: str) -> Sequence[Row[Any]]:
        with self.engine.begin() as connection:
            return connection.execute(
                select(receipts)
                .where(
                    receipts.c.sender == sender,
                    receipts.c.report_type == report_type,
                    receipts.c.period_id == period_id,
                )
                .order_by(receipts.c.version.desc())
            ).all()

    def stored_body(self, receipt_id: str) -> tuple[str, bytes] | None:
        """The media type and exact bytes of an accepted submission."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(submission_bodies.c.media_type, submission_bodies.c.body).where(
                    submission_bodies.c.receipt_id == receipt_id
                )
            ).one_or_none()
        return None if row is None else (str(row.media_type), bytes(row.body))

    # ------------------------------------------------------------ fault mode

    def read_mode(self) -> ModeState | None:
        with self.engine.begin() as connection:
            row = connection.execute(select(sandbox_mode).where(sandbox_mode.c.id == 1)).one_or_none()
        if row is None:
            return None
        return ModeState(row.mode, row.retry_after, row.overload_share, row.processing_delay)

    def write_mode(self, state: ModeState) -> None:
        values = {
            "mode": state.mode,
            "retry_after": state.retry_after,
            "overload_share": state.overload_share,
            "processing_delay": state.processing_delay,
        }
        for _attempt in range(2):
            with self.engine.begin() as connection:
                if connection.execute(update(sandbox_mode).where(sandbox_mode.c.id == 1).values(**values)).rowcount:
                    return
                try:
                    with connection.begin_nested():
                        connection.execute(insert(sandbox_mode).values(id=1, **values))
                    return
                except IntegrityError:
                    continue  # another worker inserted the row first: update it
