"""Source kind `sql_legacy`: a department's old one-stop database read directly (department-systems.md §2).

Read-only through SQLAlchemy (PostgreSQL, MySQL/MariaDB, SQLite; other dialects without the session
settings). Only the mapped, non-personal columns are ever selected; incremental pulls go by the
change column with bound parameters and stream in chunks. The old application deletes rows without a
trace, so the source also lists the codes and counts it holds for reconciliation against the warehouse.

The mapping is configuration; the `hoso` table of §2 maps like this (the constants `HOSO_FIELD_MAP` and
`HOSO_VALUE_MAPS` below are the same mapping, for code and tests):

```toml
[[sources]]
name = "legacy-department"
kind = "sql_legacy"
url_env = "BAOCAO_LEGACY_DEPARTMENT_DB_URL"  # the URL carries the database password: a secret
table = "hoso"
change_column = "ngay_capnhat"
chunk_size = 2000
overlap_minutes = 60
connect_timeout_seconds = 10
statement_timeout_seconds = 300

[sources.fields]
code = "ma_hoso"
agency_code = "ma_donvi"
procedure_code = "ma_thutuc"
field_code = "ma_linhvuc"
field_name = "ten_linhvuc"
channel = "hinhthuc_nop"
status = "trang_thai"
received_at = "ngay_nhan"
due_at = "ngay_hen_tra"
finished_at = "ngay_tra"
fee_required = "co_phi"
paid_online = "tt_truc_tuyen"
digitized = "da_so_hoa"
updated_at = "ngay_capnhat"

[sources.values.channel]
"1" = "DIRECT"
"2" = "ONLINE"
"3" = "POSTAL"

[sources.values.status]
"1" = "RECEIVED"
"2" = "PROCESSING"
"3" = "SUPPLEMENT_REQUESTED"
"4" = "RESOLVED"
"5" = "RETURNED"
"6" = "WITHDRAWN"
"9" = "CANCELLED"
```
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from baocao.core.canonical import PERSONAL_FIELDS, Col, to_local_naive
from baocao.core.errors import ConfigurationError, FatalError, RetriableError

log = logging.getLogger(__name__)

HOSO_FIELD_MAP: Mapping[str, str] = MappingProxyType(
    {
        Col.CODE.value: "ma_hoso",
        Col.AGENCY_CODE.value: "ma_donvi",
        Col.PROCEDURE_CODE.value: "ma_thutuc",
        Col.FIELD_CODE.value: "ma_linhvuc",
        Col.FIELD_NAME.value: "ten_linhvuc",
        Col.CHANNEL.value: "hinhthuc_nop",
        Col.STATUS.value: "trang_thai",
        Col.RECEIVED_AT.value: "ngay_nhan",
        Col.DUE_AT.value: "ngay_hen_tra",
        Col.FINISHED_AT.value: "ngay_tra",
        Col.FEE_REQUIRED.value: "co_phi",
        Col.PAID_ONLINE.value: "tt_truc_tuyen",
        Col.DIGITIZED.value: "da_so_hoa",
        Col.UPDATED_AT.value: "ngay_capnhat",
    }
)
HOSO_VALUE_MAPS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        Col.CHANNEL.value: MappingProxyType({"1": "DIRECT", "2": "ONLINE", "3": "POSTAL"}),
        Col.STATUS.value: MappingProxyType(
            {
                "1": "RECEIVED",
                "2": "PROCESSING",
                "3": "SUPPLEMENT_REQUESTED",
                "4": "RESOLVED",
                "5": "RETURNED",
                "6": "WITHDRAWN",
                "9": "CANCELLED",
            }
        ),
    }
)

DEFAULT_TABLE = "hoso"
DEFAULT_CHANGE_COLUMN = "ngay_capnhat"
DEFAULT_CHUNK_SIZE = 2_000
# Codes per `IN (...)` when rows are fetched by code: well under every dialect's parameter limit.
CODES_PER_QUERY = 500

_CANONICAL = frozenset(column.value for column in Col)
_PERSONAL = frozenset(name.casefold() for name in PERSONAL_FIELDS)

# What the drivers say when retrying cannot help: authentication, missing database, object or right.
_FATAL_MYSQL_CODES = frozenset({1044, 1045, 1049, 1054, 1064, 1142, 1143, 1146, 1227, 1698})
_FATAL_SQLSTATE_CLASSES = ("28", "3D", "3F", "42")
_FATAL_WORDS = (
    "password authentication failed",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "access denied",
    "unable to open database file",
    "no such table",
    "no such column",
    "not a database",
    "readonly database",
)


@dataclass(frozen=True)
class Reconciliation:
    """Codes held on one side only; the warehouse's extra codes were deleted at the source."""

    missing_in_source: frozenset[str]
    missing_in_warehouse: frozenset[str]
    in_both: int

    @property
    def consistent(self) -> bool:
        return not self.missing_in_source and not self.missing_in_warehouse


def reconcile(source_codes: Iterable[str], warehouse_codes: Iterable[str]) -> Reconciliation:
    """Compare the codes a source holds with the codes the warehouse holds for it (same window).

    `missing_in_source`: deleted at the source since they were pulled (the legacy system leaves no
    trace). `missing_in_warehouse`: never pulled, e.g. written with an old change time; fetch them with
    `LegacySqlSource.rows_for_codes`.
    """
    source, warehouse = frozenset(source_codes), frozenset(warehouse_codes)
    return Reconciliation(
        missing_in_source=warehouse - source,
        missing_in_warehouse=source - warehouse,
        in_both=len(source & warehouse),
    )


def _is_personal(column: str) -> bool:
    return column.casefold() in _PERSONAL


def _read_only_url(url: sa.URL) -> sa.URL:
    """SQLite opened through a `mode=ro` URI: the file is never created nor written."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "uri" in url.query:
        return url
    read_only = {**url.query, "mode": "ro", "uri": "true"}
    return url.set(database=Path(url.database or "").resolve().as_uri(), query=read_only)


class LegacySqlSource:
    """A legacy one-stop database table, read-only.

    `columns` is the field mapping (canonical column → source column), as `canonical_record` reads it;
    rows come back keyed by the source column names it spells. A mapping that names a personal column
    (applicant's name, ID number, phone) is refused: those columns are never selected.
    """

    def __init__(
        self,
        url: str,
        table: str = DEFAULT_TABLE,
        columns: Mapping[str, str] = HOSO_FIELD_MAP,
        *,
        name: str = "sql_legacy",
        schema: str | None = None,
        change_column: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        connect_timeout_seconds: float = 10,
        statement_timeout_seconds: float = 300,
    ) -> None:
        self.name = name
        self.table_name = table
        self.schema = schema
        self.field_map: Mapping[str, str] = MappingProxyType(dict(columns))
        self.change_column = change_column or self.field_map.get(Col.UPDATED_AT.value, DEFAULT_CHANGE_COLUMN)
        self.chunk_size = chunk_size
        self.connect_timeout_seconds = connect_timeout_seconds
        self.statement_timeout_seconds = statement_timeout_seconds
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            # The URL is a secret (it carries the password): never repeat it.
            raise ConfigurationError(f"source {name}: the database URL cannot be read") from None
        self._url = _read_only_url(parsed)
        self._shown_url = parsed.render_as_string(hide_password=True)
        self._check_mapping()
        self._engine_instance: Engine | None = None
        self._table_instance: sa.Table | None = None

    # ------------------------------------------------------------ configuration checks

    @property
    def where(self) -> str:
        """How messages name this source: its name, database (without password) and table."""
        table = f"{self.schema}.{self.table_name}" if self.schema else self.table_name
        return f"source {self.name} ({self._shown_url}, table {table})"

    def __repr__(self) -> str:
        return f"LegacySqlSource({self.where})"

    def _check_mapping(self) -> None:
        unknown = sorted(set(self.field_map) - _CANONICAL)
        if unknown:
            raise ConfigurationError(f"{self.where}: mapping names unknown canonical column(s) {', '.join(unknown)}")
        if Col.CODE.value not in self.field_map:
            raise ConfigurationError(f"{self.where}: mapping has no source column for {Col.CODE.value!r}")
        for canonical, column in [*self.field_map.items(), ("change column", self.change_column)]:
            if not column or "." in column:
                raise ConfigurationError(f"{self.where}: {canonical} mapped to {column!r}, not a column name")
            if _is_personal(column):
                raise ConfigurationError(
                    f"{self.where}: {canonical} mapped to personal column {column!r}; "
                    "applicants' personal data is never read"
                )
        if self.chunk_size < 1:
            raise ConfigurationError(f"{self.where}: chunk_size must be at least 1")

    # ------------------------------------------------------------ engine and table

    @property
    def engine(self) -> Engine:
        """The read-only engine (created on first use), with connect and statement timeouts set."""
        if self._engine_instance is None:
            self._engine_instance = self._create_engine()
        return self._engine_instance

    def _create_engine(self) -> Engine:
        backend = self._url.get_backend_name()
        timeout = self.connect_timeout_seconds
        statement_seconds = self.statement_timeout_seconds
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = max(2, math.ceil(timeout))  # libpq: whole seconds, at least 2
        elif backend in ("mysql", "mariadb"):
            # The socket read timeout is the last resort behind the server's own statement timeout.
            connect_args.update(connect_timeout=timeout, read_timeout=statement_seconds + 30)
        elif backend == "sqlite":
            connect_args["timeout"] = timeout  # waiting for a writer's lock
        engine = sa.create_engine(self._url, pool_pre_ping=True, connect_args=connect_args)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                if backend == "postgresql":
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, false), "
                        "set_config('default_transaction_read_only', 'on', false)",
                        (f"{math.ceil(statement_seconds * 1000)}",),
                    )
                    dbapi_connection.commit()
                elif backend in ("mysql", "mariadb"):
                    cursor.execute("SELECT VERSION()")
                    (server_version,) = cursor.fetchone()
                    if "mariadb" in str(server_version).lower():
                        cursor.execute("SET SESSION max_statement_time = %s", (statement_seconds,))
                    else:
                        cursor.execute("SET SESSION max_execution_time = %s", (math.ceil(statement_seconds * 1000),))
                    cursor.execute("SET SESSION TRANSACTION READ ONLY")
            finally:
                cursor.close()

        sa.event.listen(engine, "connect", on_connect)
        return engine

    def close(self) -> None:
        if self._engine_instance is not None:
            self._engine_instance.dispose()
            self._engine_instance = None

    def __enter__(self) -> LegacySqlSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _table(self, connection: Connection) -> sa.Table:
        """The table as the database describes it; missing table or mapped column is fatal."""
        if self._table_instance is not None:
            return self._table_instance
        try:
            table = sa.Table(self.table_name, sa.MetaData(), schema=self.schema, autoload_with=connection)
        except sa.exc.NoSuchTableError:
            raise FatalError(f"{self.where}: table {self.table_name!r} not found") from None
        present = {column.name.casefold(): column.name for column in table.columns}
        wanted = {*self.field_map.values(), self.change_column}
        missing = sorted(column for column in wanted if column.casefold() not in present)
        if missing:
            raise FatalError(
                f"{self.where}: mapped column(s) {', '.join(missing)} not in the table "
                f"(it has {', '.join(sorted(present.values()))})"
            )
        self._table_instance = table
        return table

    def _column(self, table: sa.Table, configured: str) -> sa.ColumnElement[Any]:
        """A table column by its configured name, matched without regard to case (MySQL, Oracle)."""
        if configured in table.c:
            return table.c[configured]
        matches = [column for column in table.c if column.name.casefold() == configured.casefold()]
        return matches[0]

    def _mapped(self, canonical: Col, table: sa.Table) -> sa.ColumnElement[Any]:
        configured = self.field_map.get(canonical.value)
        if configured is None:
            raise ConfigurationError(f"{self.where}: mapping has no source column for {canonical.value!r}")
        return self._column(table, configured)

    def _selected(self, table: sa.Table) -> list[sa.ColumnElement[Any]]:
        """Only the mapped columns (never a personal one: refused at construction), labelled as configured."""
        configured = dict.fromkeys(self.field_map.values())
        return [self._column(table, name).label(name) for name in configured]

    # ------------------------------------------------------------ reading

    def _stream(self, build: Callable[[sa.Table], sa.Executable], what: str, scalar: bool = False) -> Iterator[Any]:
        """Rows of the statement `build(table)` builds, fetched `chunk_size` at a time (server-side
        cursor where the driver has one); driver errors become retriable or fatal errors."""
        try:
            with self.engine.connect() as connection:
                statement = build(self._table(connection))
                result = connection.execution_options(stream_results=True, yield_per=self.chunk_size).execute(statement)
                if scalar:
                    yield from result.scalars()
                else:
                    for row in result.mappings():
                        yield dict(row)
        except sa.exc.SQLAlchemyError as error:
            raise self._translate(error, what) from error

    def changed_rows(self, updated_from: datetime | None, updated_to: datetime) -> Iterator[dict[str, Any]]:
        """Rows changed in [updated_from, updated_to), ordered by change time then code.

        Times are naive local (UTC+7) or aware. A full pull (`updated_from` None) also returns rows
        whose change time is empty, which no incremental pull can see.
        """
        low, high = to_local_naive(updated_from), to_local_naive(updated_to)
        if high is None:
            raise ValueError(f"{self.where}: changed rows need an end time (updated_to)")

        def build(table: sa.Table) -> sa.Select[Any]:
            changed = self._column(table, self.change_column)
            window = changed < high if low is None else sa.and_(changed >= low, changed < high)
            if low is None:
                window = sa.or_(window, changed.is_(None))
            code = self._mapped(Col.CODE, table)
            return sa.select(*self._selected(table)).where(window).order_by(changed, code)

        pulled = 0
        for row in self._stream(build, "changed rows"):
            pulled += 1
            yield row
        log.info("%s: %d row(s) changed in [%s, %s)", self.where, pulled, low, high)

    def rows_for_codes(self, codes: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The current rows of the given dossier codes (absent codes yield nothing), ordered by code."""
        wanted = sorted(set(codes))
        for start in range(0, len(wanted), CODES_PER_QUERY):
            chunk = wanted[start : start + CODES_PER_QUERY]

            def build(table: sa.Table, chunk: list[str] = chunk) -> sa.Select[Any]:
                code = self._mapped(Col.CODE, table)
                return sa.select(*self._selected(table)).where(code.in_(chunk)).order_by(code)

            yield from self._stream(build, "rows by code")

    def _received_window(
        self, table: sa.Table, received_from: datetime | None, received_to: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if received_from is None and received_to is None:
            return conditions
        received = self._mapped(Col.RECEIVED_AT, table)
        if received_from is not None:
            conditions.append(received >= to_local_naive(received_from))
        if received_to is not None:
            conditions.append(received < to_local_naive(received_to))
        return conditions

    def all_codes(self, received_from: datetime | None = None, received_to: datetime | None = None) -> set[str]:
        """Every dossier code the table holds now (received in [received_from, received_to) if given),
        whatever the status: compare with the warehouse's codes to find rows deleted at the source."""

        def build(table: sa.Table) -> sa.Select[Any]:
            code = self._mapped(Col.CODE, table)
            return sa.select(code).where(*self._received_window(table, received_from, received_to))

        return {str(code) for code in self._stream(build, "dossier codes", scalar=True)}

    def period_counts(self, received_from: datetime | None, received_to: datetime | None) -> dict[str, int]:
        """Rows per agency code received in [received_from, received_to), whatever the status: a cheap
        first comparison with the warehouse before listing codes."""

        def build(table: sa.Table) -> sa.Select[Any]:
            agency = self._mapped(Col.AGENCY_CODE, table)
            return (
                sa.select(agency.label("agency"), sa.func.count().label("rows"))
                .where(*self._received_window(table, received_from, received_to))
                .group_by(agency)
            )

        return {str(row["agency"]): int(row["rows"]) for row in self._stream(build, "counts per agency")}

    # ------------------------------------------------------------ errors

    def _translate(self, error: sa.exc.SQLAlchemyError, what: str) -> RetriableError | FatalError:
        """Retriable for lost or refused connections, timeouts, locks; fatal for authentication, a
        missing database, table or column, or anything else retrying cannot fix."""
        original = getattr(error, "orig", None)
        problem = str(original if original is not None else error).strip().splitlines()
        detail = (problem[0] if problem else type(error).__name__)[:300]
        message = f"{self.where}: {what}: {detail}"
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            return RetriableError(message)
        if not isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
            return FatalError(message)
        arguments = getattr(original, "args", ())
        mysql_code = arguments[0] if arguments and isinstance(arguments[0], int) else None
        sqlstate = getattr(original, "sqlstate", None) if mysql_code is None else None
        if mysql_code in _FATAL_MYSQL_CODES:
            return FatalError(message)
        if isinstance(sqlstate, str) and sqlstate.startswith(_FATAL_SQLSTATE_CLASSES):
            return FatalError(message)
        if mysql_code is None and sqlstate is None and any(word in detail.lower() for word in _FATAL_WORDS):
            return FatalError(message)
        return RetriableError(message)
