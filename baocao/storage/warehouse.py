"""The warehouse: batches (their rows are staged as files: `baocao.staging`), canonical dossiers, quarantine,
report rows and the submission ledger.

SQLAlchemy 2 Core, SQLite by default and PostgreSQL in production. Every write is idempotent:
dossiers are upserted by code (a stored newer version is never overwritten by an older one), and
report rows are replaced per period in one transaction.
"""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import adbc_driver_sqlite.dbapi as adbc_sqlite
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from baocao.core.bounds import printable, safe_key
from baocao.core.canonical import CANONICAL_COLUMNS, LOCAL_TIMEZONE, Col
from baocao.core.errors import FatalError, RetriableError
from baocao.core.states import BatchState
from baocao.core.tables import (
    PROCEDURE_COLUMNS,
    _dossier_columns,
    batches,
    catalogue_imports,
    dossiers,
    procedure_history,
    procedures,
    quarantine,
    source_state,
)
from baocao.storage import locks, migrations, staging


def utc_now() -> datetime:
    """Bookkeeping timestamps (not dossier times) are naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


_SQLITE_BUSY_SECONDS = 30


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Several workers share one SQLite file in the demo: wait for locks instead of failing. The wait
    # is set first; switching to WAL takes an exclusive lock, and SQLite may answer "database is
    # locked" there without calling the busy handler (another connection is creating the file or
    # recovering its WAL), so the switch is retried until the same deadline.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_SECONDS * 1000}")
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cursor.close()


# A PostgreSQL server that drops packets would otherwise hold a worker for the kernel's TCP timeout.
_CONNECT_TIMEOUT_SECONDS = 10


def open_engine(url: str) -> Engine:
    """An engine for the warehouse URL (for SQLite, its folder created), its schema left as it is."""
    parsed = sa.engine.make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FatalError(f"warehouse {shown_url(url)}: cannot create its folder ({error.strerror})") from None
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
    created = sa.create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
    if created.dialect.name == "sqlite":
        sa.event.listen(created, "connect", _sqlite_pragmas)
    return created


def connect(url: str) -> Engine:
    """An engine for the warehouse URL, its schema created or upgraded to this code's revision if behind
    (`baocao.storage.migrations`; `baocao db upgrade` does the same on its own)."""
    created = open_engine(url)
    reachable(created)
    migrations.upgrade(created)
    return created


def shown_url(url: str | sa.URL) -> str:
    """A database URL as messages show it: its password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<a URL that cannot be read>"


# What a PostgreSQL server says when it answers but refuses us: retrying cannot help (a person must fix
# the role, the password, pg_hba.conf or the database name). Anything else on connecting (nothing
# listening, a name that does not resolve, a server starting up or full) may pass.
_REFUSALS = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied")
_PASSING = ("starting up", "shutting down", "too many clients", "recovery mode")


def reachable(engine: Engine) -> None:
    """Connect once: a warehouse that does not answer is a `RetriableError`, one that refuses (wrong
    credentials, no such database, an unopenable SQLite file) a `FatalError`; the password is never shown."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as error:
        raise _connection_error(engine.url, error) from None


# What a warehouse that stops answering in the middle of a run says (the server gone, the network cut,
# the connection killed, SQLite's lock held past the busy timeout).
_OUTAGES = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection timed out",
    "connection is closed",
    "consuming input failed",
    "no connection to the server",
    "the database system is",
    "database is locked",
)


def outage(error: BaseException) -> RetriableError | None:
    """A database error that says the warehouse stopped answering mid-run, as one retriable line (with
    any password in the message hidden); None for any other error (a bug or a constraint: not retried)."""
    if not isinstance(error, sa.exc.DBAPIError):
        return None
    reason = " ".join(str(error.orig).split())
    connection_level = isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError))
    if not error.connection_invalidated and not (connection_level and any(word in reason.lower() for word in _OUTAGES)):
        return None
    reason = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", reason)
    reason = re.sub(r"(password=)\S+", r"\1***", reason)
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    return RetriableError(f"the warehouse stopped answering during the run ({reason}); try again when it answers")


def _connection_error(url: sa.URL, error: sa.exc.DBAPIError) -> FatalError | RetriableError:
    reason = " ".join(str(error.orig).split())
    if url.password:
        reason = reason.replace(str(url.password), "***")
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    where = f"warehouse {shown_url(url)}"
    if url.get_backend_name() == "sqlite":
        return FatalError(f"{where}: cannot open the database file ({reason})")
    lowered = reason.lower()
    if (
        "fatal:" in lowered
        and any(word in lowered for word in _REFUSALS)
        and not any(word in lowered for word in _PASSING)
    ):
        return FatalError(f"{where}: the server refused the connection ({reason}); fix [warehouse] and rerun")
    return RetriableError(f"{where}: cannot connect ({reason}); try again when it answers")


def _insert_for(engine_or_connection: Engine | Connection) -> Any:
    name = engine_or_connection.dialect.name
    if name == "sqlite":
        return sqlite.insert
    if name == "postgresql":
        return postgresql.insert
    raise NotImplementedError(f"warehouse dialect {name!r} is not supported (use SQLite or PostgreSQL)")


def start_batch(
    engine: Engine, batch_id: str, source: str, kind: str, window_from: datetime | None, window_to: datetime
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(batches).values(
                batch_id=batch_id,
                source=source,
                kind=kind,
                state=BatchState.STAGED,
                window_from=window_from,
                window_to=window_to,
                started_at=utc_now(),
            )
        )


def stage_dossiers(engine: Engine, batch_id: str, frame: pd.DataFrame, pulled: int, staging_dir: Path) -> int:
    """Write a batch's canonical rows to its staging file (re-staging the same batch replaces it)."""
    staging.write_batch(staging_dir, batch_id, frame)
    return record_staged(engine, batch_id, pulled=pulled, staged=len(frame))


def record_staged(engine: Engine, batch_id: str, pulled: int, staged: int) -> int:
    with engine.begin() as connection:
        connection.execute(
            sa.update(batches).where(batches.c.batch_id == batch_id).values(pulled=pulled, staged=staged)
        )
    return staged


def record_quarantine(
    engine: Engine, batch_id: str, source: str, failures: Iterable[tuple[str, str, str]], stage: str
) -> int:
    """Store (record key, rule, detail) for records held back from the warehouse.

    Re-running a stage for the same batch replaces that stage's entries, so reruns do not pile up.
    """
    now = utc_now()
    rows = [
        {
            "batch_id": batch_id,
            "source": source,
            "stage": stage,
            # A key or detail may carry what made the record poison (a NUL, an escape, a 10 MiB code):
            # stored escaped and cut, so that neither database refuses it and no terminal obeys it.
            "record_key": key if safe_key(key, 100) else printable(key, 60),
            "rule": printable(rule, 150)[:200],
            "detail": printable(detail, 900)[:1000],
            "at": now,
        }
        for key, rule, detail in failures
    ]
    with engine.begin() as connection:
        connection.execute(sa.delete(quarantine).where(quarantine.c.batch_id == batch_id, quarantine.c.stage == stage))
        if rows:
            connection.execute(sa.insert(quarantine), rows)
    return len({row["record_key"] for row in rows})


def _merge_table(batch_id: str) -> sa.Table:
    """PostgreSQL: the batch's rows that passed, bulk-loaded inside the merge's transaction and dropped
    at its end. UNLOGGED (no WAL for rows that live for one statement; a temporary table would spill
    through the session's small temp buffers), named per batch so that two sources can merge at once.
    """
    return sa.Table(
        "merge_" + hashlib.sha256(batch_id.encode()).hexdigest()[:16],
        sa.MetaData(),
        sa.Column(Col.CODE, sa.String(100)),
        *_dossier_columns(),
        prefixes=["UNLOGGED"],
    )


# SQLite: the rows that passed are written by ADBC (Arrow's C driver) into a scratch database file
# beside the staged file, attached under this name for the upsert and deleted afterwards.
_SQLITE_LOAD_SCHEMA = "merge_load"
_SQLITE_LOAD = sa.Table(
    "rows", sa.MetaData(), sa.Column(Col.CODE, sa.String(100)), *_dossier_columns(), schema=_SQLITE_LOAD_SCHEMA
)


def _sqlite_scratch(staged_file: Path, rows: Iterable[pa.RecordBatch]) -> tuple[Path, int]:
    """Write the rows into a fresh scratch SQLite file with ADBC's bulk ingest (C, Arrow-native).

    Timestamps become SQLAlchemy's own "YYYY-MM-DD HH:MM:SS.ffffff" text by an Arrow cast, booleans
    0/1. Per million rows: ~4 s, against ~15 s for Python's executemany.
    """
    # Named per merge: a second merge of the batch at the same moment must not write into this one's.
    scratch = staged_file.with_name(f"{staged_file.name}.{uuid.uuid4().hex[:12]}.merge.sqlite")
    as_text = {name for name in CANONICAL_COLUMNS if pa.types.is_timestamp(staging.SCHEMA.field(name).type)}
    target = pa.schema(
        [
            pa.field(name, pa.string() if name in as_text else staging.SCHEMA.field(name).type)
            for name in CANONICAL_COLUMNS
        ]
    )
    counted = _Counted(rows)

    def cast(batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [batch.column(name) for name in CANONICAL_COLUMNS]
        return pa.RecordBatch.from_arrays(
            [
                array.cast(pa.string()) if name in as_text else array
                for name, array in zip(CANONICAL_COLUMNS, arrays, strict=True)
            ],
            schema=target,
        )

    reader = pa.RecordBatchReader.from_batches(target, (cast(batch) for batch in counted))
    with adbc_sqlite.connect(str(scratch)) as connection:
        with connection.cursor() as cursor:
            cursor.adbc_ingest(_SQLITE_LOAD.name, reader, mode="create")
        connection.commit()
    return scratch, counted.rows


# A first load at least this big goes straight into an empty `dossiers` (see `_load_into_empty`).
INITIAL_LOAD_MIN_ROWS = 100_000


def _csv_chunks(
    rows: Iterable[pa.RecordBatch], columns: Sequence[str], constants: Mapping[str, str]
) -> Iterator[bytes]:
    """Record batches as CSV for COPY, with constant columns (source, batch) appended."""
    for batch in rows:
        selected = batch.select(list(columns))
        for name, value in constants.items():
            selected = selected.append_column(name, pa.repeat(pa.scalar(value, pa.string()), batch.num_rows))
        buffer = io.BytesIO()
        pcsv.write_csv(selected, buffer, pcsv.WriteOptions(include_header=False))
        yield buffer.getvalue()


def _copy(
    connection: Connection,
    table: str,
    rows: Iterable[pa.RecordBatch],
    columns: Sequence[str],
    constants: Mapping[str, str] | None = None,
) -> int:
    """PostgreSQL COPY of record batches into `table`, on the transaction's own connection."""
    constants = constants or {}
    names = [*columns, *constants]
    counted = _Counted(rows)
    dbapi = connection.connection.driver_connection
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv)"
    with dbapi.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for chunk in _csv_chunks(counted, columns, constants):
            copy.write(chunk)
    return counted.rows


class _Counted:
    """Passes record batches through, counting their rows."""

    def __init__(self, rows: Iterable[pa.RecordBatch]) -> None:
        self._rows = rows
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._rows:
            self.rows += batch.num_rows
            yield batch


def _empty_for_initial_load(connection: Connection, staged_rows: int, min_rows: int) -> bool:
    """Whether this merge may load straight into `dossiers`: a big batch and an empty table.

    On PostgreSQL the table is locked first (ACCESS EXCLUSIVE, until the merge commits) and then found
    empty, so a concurrent merge waits and then takes the upsert path; on SQLite the caller holds the
    database's write lock already (BEGIN IMMEDIATE).
    """
    if staged_rows < min_rows:
        return False
    if connection.execute(sa.select(sa.exists().select_from(dossiers))).scalar_one():
        return False
    if connection.dialect.name != "postgresql":
        return True
    connection.exec_driver_sql("LOCK TABLE dossiers IN ACCESS EXCLUSIVE MODE")
    return not connection.execute(sa.select(sa.exists().select_from(dossiers))).scalar_one()


def _load_into_empty(connection: Connection, rows: Iterable[pa.RecordBatch], source: str, batch_id: str) -> int:
    """A first load into the empty, locked `dossiers` table (PostgreSQL).

    COPY into the table itself, with its primary key and index dropped and rebuilt afterwards in the
    same transaction: COPY writes rows in multi-row WAL records while INSERT … SELECT writes one per
    row, and building an index once is several times cheaper than growing it row by row (5M rows:
    merge 148 s → 67 s, README). The rows that passed validation have distinct codes; should two share
    one, adding the primary key fails and the whole merge rolls back, the batch staying STAGED.
    """
    primary_key = connection.execute(
        sa.text("SELECT conname FROM pg_constraint WHERE conrelid = 'dossiers'::regclass AND contype = 'p'")
    ).scalar_one()
    connection.exec_driver_sql(f'ALTER TABLE dossiers DROP CONSTRAINT "{primary_key}"')
    for index in dossiers.indexes:
        connection.execute(sa.schema.DropIndex(index))
    loaded = _copy(connection, "dossiers", rows, list(CANONICAL_COLUMNS), {"source": source, "batch_id": batch_id})
    connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    connection.exec_driver_sql(f'ALTER TABLE dossiers ADD CONSTRAINT "{primary_key}" PRIMARY KEY ({Col.CODE.value})')
    for index in dossiers.indexes:
        connection.execute(sa.schema.CreateIndex(index))
    connection.exec_driver_sql("ANALYZE dossiers")  # the period's aggregation runs next: give it statistics
    return loaded


def merge_batch(
    engine: Engine, batch_id: str, staged_file: Path, initial_load_min_rows: int = INITIAL_LOAD_MIN_ROWS
) -> int:
    """Upsert the batch's valid staged rows into `dossiers` and move the source's watermark.

    A stored dossier is replaced only by a version at least as new; quarantined records are skipped,
    so the good version already stored stays. One transaction: a crash leaves the batch STAGED and
    its file in place. The rows are bulk-loaded into a scratch table first (COPY into an UNLOGGED
    table on PostgreSQL, ADBC into an attached scratch file on SQLite), then upserted in one
    statement; a big first load into an empty table is copied straight in on PostgreSQL
    (`_load_into_empty`) and inserted without the period index on SQLite (`_insert_into_empty_sqlite`).

    Two merges of one batch at once (a task retried while the first attempt still runs) merge it
    once: the second finds it MERGED when its turn comes and returns what the first merged.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            merged = _merge_sqlite(connection, batch_id, staged_file, initial_load_min_rows)
        else:
            with locks.exclusive_on(connection, f"merge:{batch_id}"):
                batch = _batch(connection, batch_id)
                if batch["state"] == BatchState.MERGED:
                    return int(batch["merged"])
                rows = staging.read_batch(staged_file, _held_back(connection, batch_id))
                if _empty_for_initial_load(connection, int(batch["staged"] or 0), initial_load_min_rows):
                    merged = _load_into_empty(connection, rows, batch["source"], batch_id)
                else:
                    load = _merge_table(batch_id)
                    load.drop(connection, checkfirst=True)
                    load.create(connection)
                    merged = _copy(connection, load.name, rows, [column.name for column in load.columns])
                    _upsert_from(connection, load, batch["source"], batch_id)
                    load.drop(connection)
                _finish_merge(connection, batch, merged)
    # Staging is scratch space: once merged, the batch's rows live in `dossiers`. Scratch files a
    # crashed SQLite merge of this batch left go too (a concurrent one finds the batch MERGED anyway).
    staged_file.unlink(missing_ok=True)
    for scratch in staged_file.parent.glob(f"{staged_file.name}.*.merge.sqlite"):
        scratch.unlink(missing_ok=True)
    return int(merged)


def _batch(connection: Connection, batch_id: str) -> sa.RowMapping:
    return connection.execute(sa.select(batches).where(batches.c.batch_id == batch_id)).mappings().one()


def _held_back(connection: Connection, batch_id: str) -> list[str]:
    """The batch's quarantined record keys: the merge skips their rows."""
    keys = connection.execute(sa.select(quarantine.c.record_key).where(quarantine.c.batch_id == batch_id)).scalars()
    return sorted(set(keys))


def _merge_sqlite(connection: Connection, batch_id: str, staged_file: Path, initial_load_min_rows: int) -> int:
    """SQLite: rows into a scratch file (ADBC), attached while no transaction is open, merged, detached.

    The scratch file is written before the write lock is taken, so other writers wait only for the
    upsert. The transaction starts with BEGIN IMMEDIATE, which takes the write lock at once: a
    concurrent merge waits, the batch's state is read again under the lock (another merge of this
    batch may have finished meanwhile, and removed the staged file), and the emptiness check below
    cannot race. A big first load into an empty table is inserted with the period index dropped and
    rebuilt afterwards (`_insert_into_empty_sqlite`); SQLite's DDL is transactional, so a failure
    restores the index with everything else.
    """
    batch = _batch(connection, batch_id)
    if batch["state"] == BatchState.MERGED:
        return int(batch["merged"])
    held_back = _held_back(connection, batch_id)
    connection.commit()
    try:
        scratch, merged = _sqlite_scratch(staged_file, staging.read_batch(staged_file, held_back))
    except FileNotFoundError:
        done = _batch(connection, batch_id)
        connection.commit()
        if done["state"] != BatchState.MERGED:
            raise
        return int(done["merged"])
    try:
        # The default 2 MiB page cache thrashes on millions of rows keyed by text codes: give this
        # connection 256 MiB for as long as it is pooled.
        connection.exec_driver_sql("PRAGMA cache_size = -262144")
        connection.exec_driver_sql(f"ATTACH DATABASE ? AS {_SQLITE_LOAD_SCHEMA}", (str(scratch),))
        try:
            locks.begin_exclusive(connection, f"merge:{batch_id}")
            batch = _batch(connection, batch_id)
            if batch["state"] == BatchState.MERGED:
                merged = int(batch["merged"])
            else:
                if _empty_for_initial_load(connection, merged, initial_load_min_rows):
                    _insert_into_empty_sqlite(connection, _SQLITE_LOAD, batch["source"], batch_id)
                else:
                    _upsert_from(connection, _SQLITE_LOAD, batch["source"], batch_id)
                _finish_merge(connection, batch, merged)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.exec_driver_sql(f"DETACH DATABASE {_SQLITE_LOAD_SCHEMA}")
            connection.commit()
    finally:
        scratch.unlink(missing_ok=True)
    return merged


def _rows_from(load: sa.Table, source: str, batch_id: str) -> sa.Select[Any]:
    """The scratch table's rows as `dossiers` rows, in code order: each page of the primary key is
    then filled once instead of revisited at random."""
    return (
        sa.select(
            *[load.c[name] for name in CANONICAL_COLUMNS],
            sa.literal(source).label("source"),
            sa.literal(batch_id).label("batch_id"),
        )
        .where(sa.true())  # SQLite needs a WHERE to tell INSERT … SELECT … ON CONFLICT apart
        .order_by(load.c[Col.CODE])
    )


def _insert_into_empty_sqlite(connection: Connection, load: sa.Table, source: str, batch_id: str) -> None:
    """SQLite: a first load into the empty, write-locked `dossiers`, its period index built once after.

    5M rows: 76 s through the upsert, 42 s this way (README). The rows that passed validation have
    distinct codes; should two share one, the primary key refuses the insert and the merge rolls back.
    """
    for index in dossiers.indexes:
        connection.execute(sa.schema.DropIndex(index))
    connection.execute(
        sa.insert(dossiers).from_select([*CANONICAL_COLUMNS, "source", "batch_id"], _rows_from(load, source, batch_id))
    )
    for index in dossiers.indexes:
        connection.execute(sa.schema.CreateIndex(index))


def _upsert_from(connection: Connection, load: sa.Table, source: str, batch_id: str) -> None:
    """Upsert the scratch table's rows into `dossiers` in code order; a stored newer version stays."""
    insert = _insert_for(connection)
    value_columns = [name for name in CANONICAL_COLUMNS if name != Col.CODE]
    statement = insert(dossiers).from_select(
        [*CANONICAL_COLUMNS, "source", "batch_id"], _rows_from(load, source, batch_id)
    )
    statement = statement.on_conflict_do_update(
        index_elements=[dossiers.c.code],
        set_={name: statement.excluded[name] for name in [*value_columns, "source", "batch_id"]},
        where=sa.or_(
            dossiers.c.updated_at.is_(None),
            statement.excluded[Col.UPDATED_AT] >= dossiers.c.updated_at,
        ),
    )
    connection.execute(statement)


def _finish_merge(connection: Connection, batch: sa.RowMapping, merged: int) -> None:
    """Mark the batch MERGED and move its source's watermark (in the merge's transaction)."""
    insert = _insert_for(connection)
    batch_id = batch["batch_id"]
    quarantined = connection.execute(
        sa.select(sa.func.count(sa.distinct(quarantine.c.record_key))).where(quarantine.c.batch_id == batch_id)
    ).scalar_one()
    connection.execute(
        sa.update(batches)
        .where(batches.c.batch_id == batch_id)
        .values(state=BatchState.MERGED, merged=merged, quarantined=quarantined, finished_at=utc_now())
    )
    state = insert(source_state).values(source=batch["source"], watermark=batch["window_to"], batch_id=batch_id)
    connection.execute(
        state.on_conflict_do_update(
            index_elements=[source_state.c.source],
            set_={"watermark": state.excluded.watermark, "batch_id": state.excluded.batch_id},
        )
    )


def replace_procedures(
    engine: Engine,
    source: str,
    batch_id: str,
    rows: Sequence[Mapping[str, Any]],
    as_of: datetime | None = None,
) -> int:
    """The source's whole catalogue replaces what it published before (catalogues come whole).

    The history keeps what it replaced: each entry that changed or went away is closed at `as_of`
    (local naive time of the import, now by default) and each new or changed entry opens a version
    there. An import that changes nothing adds no version, only its time (`catalogue_imports`).
    """
    records = [
        {**{name: row.get(name) for name in PROCEDURE_COLUMNS}, "source": source, "batch_id": batch_id} for row in rows
    ]
    at = as_of or datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)
    # Two imports of one source's catalogue at once take turns: the second reads the history the first
    # committed (otherwise both delete, both insert, and the second dies on the primary key).
    with locks.exclusive(engine, f"procedures:{source}") as connection:
        last = connection.execute(
            sa.select(sa.func.max(catalogue_imports.c.imported_at)).where(catalogue_imports.c.source == source)
        ).scalar_one()
        if last is not None and at <= last:
            at = last + timedelta(microseconds=1)  # imports of one source are ordered, even within a clock tick
        h = procedure_history.c
        open_versions = {
            (row.code, row.agency_code): {name: getattr(row, name) for name in PROCEDURE_COLUMNS}
            for row in connection.execute(
                sa.select(*[h[name] for name in PROCEDURE_COLUMNS]).where(h.source == source, h.valid_to.is_(None))
            )
        }
        published = {(record["code"], record["agency_code"]): record for record in records}
        changed = [
            record
            for key, record in published.items()
            if open_versions.get(key) != {name: record[name] for name in PROCEDURE_COLUMNS}
        ]
        changed_keys = {(record["code"], record["agency_code"]) for record in changed}
        closed = [key for key in open_versions if key not in published or key in changed_keys]
        if closed:
            close = (
                sa.update(procedure_history)
                .where(
                    h.source == source,
                    h.code == sa.bindparam("entry_code"),
                    h.agency_code == sa.bindparam("entry_agency"),
                    h.valid_to.is_(None),
                )
                .values(valid_to=at)
            )
            connection.execute(close, [{"entry_code": code, "entry_agency": agency} for code, agency in closed])
        versions = [{**record, "valid_from": at, "valid_to": None} for record in changed]
        connection.execute(sa.delete(procedures).where(procedures.c.source == source))
        for offset in range(0, len(records), 5000):
            connection.execute(sa.insert(procedures), records[offset : offset + 5000])
        for offset in range(0, len(versions), 5000):
            connection.execute(sa.insert(procedure_history), versions[offset : offset + 5000])
        connection.execute(
            sa.insert(catalogue_imports).values(source=source, imported_at=at, batch_id=batch_id, entries=len(records))
        )
    return len(records)


def live_codes(engine: Engine, source: str, agencies: Iterable[str] | None = None) -> set[str]:
    """Codes of the dossiers this source wrote that are not marked deleted; with `agencies`, only theirs.

    A commune's export is that commune's whole table, not the source's: it can only tell which of its
    own agency's dossiers vanished, so that comparison is restricted to the agencies whose files came.
    """
    live = sa.select(dossiers.c.code).where(dossiers.c.source == source, dossiers.c.deleted.is_(False))
    with engine.connect() as connection:
        if agencies is None:
            return set(connection.execute(live).scalars())
        chosen = sorted(set(agencies))
        found: set[str] = set()
        for offset in range(0, len(chosen), 1000):
            some = live.where(dossiers.c.agency_code.in_(chosen[offset : offset + 1000]))
            found.update(connection.execute(some).scalars())
        return found


def mark_vanished(engine: Engine, source: str, codes: Iterable[str], batch_id: str) -> int:
    """Dossiers whose rows disappeared from the source count nowhere from now on (kept, flagged deleted)."""
    chosen = sorted(codes)
    marked = 0
    with engine.begin() as connection:
        for offset in range(0, len(chosen), 1000):
            result = connection.execute(
                sa.update(dossiers)
                .where(dossiers.c.source == source, dossiers.c.code.in_(chosen[offset : offset + 1000]))
                .values(deleted=True, batch_id=batch_id)
            )
            marked += result.rowcount
    return marked


def watermark(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as connection:
        value = connection.execute(
            sa.select(source_state.c.watermark).where(source_state.c.source == source)
        ).scalar_one_or_none()
    return value


def stuck_batches(engine: Engine, source: str | None = None) -> list[Mapping[str, Any]]:
    """Batches still STAGED (of `source`, or of every source), oldest first, with the watermark of their
    source: what a run left between its start and its merge."""
    query = (
        sa.select(batches, source_state.c.watermark)
        .select_from(batches.outerjoin(source_state, source_state.c.source == batches.c.source))
        .where(batches.c.state == BatchState.STAGED)
        .order_by(batches.c.started_at, batches.c.batch_id)
    )
    if source is not None:
        query = query.where(batches.c.source == source)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def batch_states(engine: Engine, batch_ids: Iterable[str]) -> dict[str, str]:
    """The state of each of these batches that the warehouse knows."""
    wanted = sorted(set(batch_ids))
    found: dict[str, str] = {}
    with engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = sa.select(batches.c.batch_id, batches.c.state).where(batches.c.batch_id.in_(chunk))
            rows = connection.execute(query)
            found.update({row.batch_id: row.state for row in rows})
    return found


def retire_batch(engine: Engine, batch_id: str) -> bool:
    """Mark a STAGED batch ABANDONED (its staged rows are not merged; the watermark stays, so its window
    is read again by the next pull). False when it is no longer STAGED (merged meanwhile)."""
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(batches)
            .where(batches.c.batch_id == batch_id, batches.c.state == BatchState.STAGED)
            .values(state=BatchState.ABANDONED, finished_at=utc_now())
        )
    return bool(result.rowcount)


def batch_summary(engine: Engine, batch_id: str) -> Mapping[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(batches).where(batches.c.batch_id == batch_id)).mappings().one())


def quarantined_records(engine: Engine, batch_id: str) -> list[Mapping[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(quarantine).where(quarantine.c.batch_id == batch_id).order_by(quarantine.c.id)
        ).mappings()
        return [dict(row) for row in rows]


def finish_file_batch(
    engine: Engine, batch_id: str, state: BatchState, pulled: int, stored: int, quarantined: int
) -> None:
    """Close the batch of a file stored whole (a catalogue, a score workbook): STORED; REJECTED when the
    file was refused (what the source stored before is left as it was); FAILED when it could not be fetched."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(batches)
            .where(batches.c.batch_id == batch_id)
            .values(
                state=state,
                pulled=pulled,
                staged=stored,
                merged=stored,
                quarantined=quarantined,
                finished_at=utc_now(),
            )
        )


def stored_procedures(engine: Engine, source: str, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The entries `source` published last for these (code, agency_code) keys (those it has)."""
    wanted = set(keys)
    if not wanted:
        return []
    codes = sorted({code for code, _ in wanted})
    found = []
    with engine.connect() as connection:
        for offset in range(0, len(codes), 1000):
            rows = connection.execute(
                sa.select(*[procedures.c[name] for name in PROCEDURE_COLUMNS]).where(
                    procedures.c.source == source, procedures.c.code.in_(codes[offset : offset + 1000])
                )
            )
            found += [dict(row._mapping) for row in rows if (row.code, row.agency_code) in wanted]
    return found


def procedure_publishers(engine: Engine, other_than: str) -> dict[tuple[str, str], str]:
    """(code, agency_code) → source, for the catalogue entries published by sources other than `other_than`."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(procedures.c.code, procedures.c.agency_code, procedures.c.source).where(
                procedures.c.source != other_than
            )
        )
        return {(row.code, row.agency_code): row.source for row in rows}
