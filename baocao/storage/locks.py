"""An exclusive lock per key, held by a transaction: two processes replacing the same thing take turns.

A replace (delete what is stored, insert the new) under READ COMMITTED is not safe when two processes
run it at once: both delete, both insert, and the second dies on the primary key (two extracts of one
catalogue under a real scheduler did: `UniqueViolation … procedures_pkey`). Whoever holds the key's
lock replaces; the other waits for the commit, then reads and replaces what the first one stored.

PostgreSQL: a transaction-level advisory lock on a 64-bit hash of the key, so other keys go on in
parallel; it is released by the commit or the rollback. SQLite: `BEGIN IMMEDIATE`, which takes the
database's write lock at once (SQLite has one writer at a time, whatever the key) instead of at the
first write, so a transaction that reads before it writes cannot lose its snapshot to another writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


def lock_id(key: str) -> int:
    """The key as PostgreSQL's advisory lock number (a signed 64-bit integer), the same in every process."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def begin_exclusive(connection: Connection, key: str) -> None:
    """Begin a transaction on `connection` (none may be in progress) holding the lock for `key` until it ends.

    Waits while another transaction holds it: on PostgreSQL without limit (a transaction holding it is
    working), on SQLite for the connection's busy timeout.
    """
    name = connection.dialect.name
    if name == "sqlite":
        # Through the driver: SQLAlchemy's own begin emits nothing on SQLite, and the driver's implicit
        # BEGIN is DEFERRED. The DBAPI connection is then in a transaction, which commit() ends.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id(key))))
    else:
        raise NotImplementedError(f"warehouse dialect {name!r} is not supported (use SQLite or PostgreSQL)")


@contextmanager
def exclusive_on(connection: Connection, key: str) -> Iterator[Connection]:
    """A transaction on an open connection holding the lock for `key`: committed at the end of the
    block, rolled back (and the lock released) if it raises."""
    begin_exclusive(connection, key)
    try:
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


@contextmanager
def exclusive(engine: Engine, key: str) -> Iterator[Connection]:
    """Like `engine.begin()`, with the lock for `key` held from the start of the transaction to its end.

    Keys name what is replaced, e.g. `procedures:<source>` or `report_tthc_rows:<period>:<regime>`.
    """
    with engine.connect() as connection, exclusive_on(connection, key):
        yield connection
