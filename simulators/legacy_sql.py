"""Simulated legacy department database (department-systems.md §2): the `hoso` table on any SQLAlchemy URL.

Rows hold each dossier's state as of a moment, taken from the one-stop generator, written the way the
old application writes them: integer codes for channel and status, 0/1 flags, naive local times
(UTC+7, whole seconds), the applicant's personal data beside the dossier, rows updated in place and
deleted rows simply gone. The helpers that move time forward, update and delete rows exist for tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from baocao.simulators.onestop.generator import Dataset
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Channel, Dossier, DossierHistory, Status

HOSO_TABLE = "hoso"
CODE_COLUMN = "ma_hoso"
CHANGE_COLUMN = "ngay_capnhat"
PERSONAL_COLUMNS = ("ho_ten", "so_cccd", "dien_thoai")

CHANNEL_CODES: Mapping[Channel, int] = MappingProxyType({Channel.DIRECT: 1, Channel.ONLINE: 2, Channel.POSTAL: 3})
STATUS_CODES: Mapping[Status, int] = MappingProxyType(
    {
        Status.RECEIVED: 1,
        Status.PROCESSING: 2,
        Status.SUPPLEMENT_REQUESTED: 3,
        Status.RESOLVED: 4,
        Status.RETURNED: 5,
        Status.WITHDRAWN: 6,
        Status.CANCELLED: 9,
    }
)

DEFAULT_CHUNK_SIZE = 5_000


def hoso_table(metadata: sa.MetaData, name: str = HOSO_TABLE) -> sa.Table:
    """The `hoso` table as §2 describes it (column names without diacritics)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("ma_hoso", sa.String(100), primary_key=True),
        sa.Column("ma_donvi", sa.String(32), nullable=False),
        sa.Column("ma_thutuc", sa.String(64)),
        sa.Column("ma_linhvuc", sa.String(64)),
        sa.Column("ten_linhvuc", sa.String(500)),
        sa.Column("hinhthuc_nop", sa.Integer),
        sa.Column("ngay_nhan", sa.DateTime),
        sa.Column("ngay_hen_tra", sa.DateTime),
        sa.Column("ngay_tra", sa.DateTime),
        sa.Column("trang_thai", sa.Integer),
        sa.Column("co_phi", sa.SmallInteger),
        sa.Column("tt_truc_tuyen", sa.SmallInteger),
        sa.Column("da_so_hoa", sa.SmallInteger),
        sa.Column("ho_ten", sa.String(200)),
        sa.Column("so_cccd", sa.String(20)),
        sa.Column("dien_thoai", sa.String(20)),
        sa.Column("ngay_capnhat", sa.DateTime),
        sa.Index(f"ix_{name}_ngay_capnhat", "ngay_capnhat"),
        sa.Index(f"ix_{name}_ngay_nhan", "ngay_nhan"),
        mysql_charset="utf8mb4",
    )


@dataclass(frozen=True)
class HosoChanges:
    """What moving the database from one moment to a later one did, by dossier code."""

    updated: frozenset[str]
    inserted: frozenset[str]
    deleted: frozenset[str]


def local_naive(moment: datetime | None) -> datetime | None:
    """A time as the legacy application stores it: naive local wall time (UTC+7), whole seconds."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL_TIMEZONE).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def hoso_row(dossier: Dossier) -> dict[str, Any]:
    """One dossier version as a `hoso` row."""
    return {
        "ma_hoso": dossier.code,
        "ma_donvi": dossier.agency_code,
        "ma_thutuc": dossier.procedure_code,
        "ma_linhvuc": dossier.field_code,
        "ten_linhvuc": dossier.field_name,
        "hinhthuc_nop": CHANNEL_CODES[dossier.channel],
        "ngay_nhan": local_naive(dossier.received_at),
        "ngay_hen_tra": local_naive(dossier.due_at),
        "ngay_tra": local_naive(dossier.finished_at),
        "trang_thai": STATUS_CODES[dossier.status],
        "co_phi": int(dossier.fee_required),
        "tt_truc_tuyen": int(dossier.paid_online),
        "da_so_hoa": int(dossier.digitized),
        "ho_ten": dossier.applicant.name,
        "so_cccd": dossier.applicant.id_number,
        "dien_thoai": dossier.applicant.phone,
        "ngay_capnhat": local_naive(dossier.updated_at),
    }


def _engine(url: str) -> Engine:
    return sa.create_engine(url)


def _table(name: str) -> sa.Table:
    return hoso_table(sa.MetaData(), name)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def create_hoso(url: str, table: str = HOSO_TABLE) -> None:
    """(Re)create an empty `hoso` table."""
    engine = _engine(url)
    try:
        hoso = _table(table)
        with engine.begin() as connection:
            hoso.drop(connection, checkfirst=True)
            hoso.create(connection)
    finally:
        engine.dispose()


def seed_hoso(
    url: str,
    dataset: Dataset,
    as_of: datetime,
    *,
    table: str = HOSO_TABLE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """(Re)create the table holding every dossier as it stood at `as_of`; returns the row count.

    Dossiers deleted by then, or not yet received, are absent.
    """
    rows = [hoso_row(dossier) for dossier in dataset.current_dossiers(as_of) if not dossier.deleted]
    create_hoso(url, table)
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            _insert(connection, _table(table), rows, chunk_size)
    finally:
        engine.dispose()
    return len(rows)


def _insert(connection: Connection, hoso: sa.Table, rows: Sequence[dict[str, Any]], chunk_size: int) -> None:
    for chunk in _chunks(rows, chunk_size):
        connection.execute(hoso.insert(), list(chunk))


def _update(connection: Connection, hoso: sa.Table, rows: Sequence[dict[str, Any]], chunk_size: int) -> None:
    """Update rows in place by code, grouped by the set of columns they change (one executemany each)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(key for key in row if key != CODE_COLUMN))
        groups.setdefault(columns, []).append({f"new_{key}": value for key, value in row.items()})
    for columns, params in groups.items():
        statement = (
            hoso.update()
            .where(hoso.c[CODE_COLUMN] == sa.bindparam(f"new_{CODE_COLUMN}"))
            .values({column: sa.bindparam(f"new_{column}") for column in columns})
        )
        for chunk in _chunks(params, chunk_size):
            connection.execute(statement, list(chunk))


def _delete(connection: Connection, hoso: sa.Table, codes: Sequence[str], chunk_size: int) -> int:
    deleted = 0
    for start in range(0, len(codes), chunk_size):
        result = connection.execute(hoso.delete().where(hoso.c[CODE_COLUMN].in_(codes[start : start + chunk_size])))
        deleted += result.rowcount
    return deleted


def _present(dossier: Dossier | None) -> bool:
    return dossier is not None and not dossier.deleted


def advance_hoso(
    url: str,
    dataset: Dataset,
    since: datetime,
    as_of: datetime,
    *,
    table: str = HOSO_TABLE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> HosoChanges:
    """Move a table seeded at `since` to its state at `as_of`, as the application would have.

    A dossier that changed is updated in place (new state, new `ngay_capnhat`), a new one inserted, a
    deleted one removed.
    """
    updated: list[dict[str, Any]] = []
    inserted: list[dict[str, Any]] = []
    deleted: list[str] = []
    history: DossierHistory
    for history in dataset.dossiers:
        before, after = history.as_of(since), history.as_of(as_of)
        if _present(before) and _present(after):
            assert before is not None and after is not None
            if after.updated_at != before.updated_at:
                updated.append(hoso_row(after))
        elif _present(after):
            assert after is not None
            inserted.append(hoso_row(after))
        elif _present(before):
            deleted.append(history.code)
    engine = _engine(url)
    try:
        hoso = _table(table)
        with engine.begin() as connection:
            _update(connection, hoso, updated, chunk_size)
            _insert(connection, hoso, inserted, chunk_size)
            _delete(connection, hoso, deleted, chunk_size)
    finally:
        engine.dispose()
    return HosoChanges(
        updated=frozenset(row[CODE_COLUMN] for row in updated),
        inserted=frozenset(row[CODE_COLUMN] for row in inserted),
        deleted=frozenset(deleted),
    )


def update_hoso(
    url: str,
    changes: Mapping[str, Mapping[str, Any]],
    changed_at: datetime,
    *,
    table: str = HOSO_TABLE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Update rows in place: dossier code → {column: new value}; every changed row gets `ngay_capnhat`
    = `changed_at`. Returns the number of rows asked to change."""
    stamp = local_naive(changed_at)
    rows = [{**values, CODE_COLUMN: code, CHANGE_COLUMN: stamp} for code, values in changes.items()]
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            _update(connection, _table(table), rows, chunk_size)
    finally:
        engine.dispose()
    return len(rows)


def delete_hoso(
    url: str, codes: Iterable[str], *, table: str = HOSO_TABLE, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Delete rows by dossier code, as the application does: nothing marks them. Returns rows deleted."""
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            return _delete(connection, _table(table), sorted(set(codes)), chunk_size)
    finally:
        engine.dispose()
