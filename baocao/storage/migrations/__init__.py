"""The warehouse's schema, versioned: Alembic revisions in `versions/`, applied by `baocao db upgrade` and,
when the warehouse is behind, by `warehouse.connect` at start.

Alembic is configured here, in code, from this folder: the installed wheel carries the revisions as
modules of the package and needs no alembic.ini. Upgraders take turns (`MIGRATION_LOCK`, held by the
transaction that migrates): workers starting together on a new warehouse create it once, and the
others find it at head. A warehouse made before the migrations (no `alembic_version`) is adopted by
revision 0001 (`versions/0001_warehouse_schema.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from baocao.core.errors import FatalError
from baocao.storage import locks

MIGRATIONS = Path(__file__).resolve().parent
# The key upgraders lock on (a PostgreSQL advisory lock; on SQLite the database's write lock).
MIGRATION_LOCK = "baocao.storage.migrations"


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: the revision found (None: a new warehouse, or one from before the
    migrations) and the one left."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the warehouse revisions; `connection` is the one env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    found = _scripts().get_current_head()
    assert found is not None, f"no revision in {MIGRATIONS / 'versions'}"
    return found


def known(revision: str) -> bool:
    """Whether `revision` is one of this code's (an unknown one was written by newer code)."""
    return revision in {script.revision for script in _scripts().walk_revisions()}


@cache  # the revisions a process knows do not change while it runs
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def current(engine: Engine) -> str | None:
    """The warehouse's revision; None for a new warehouse or one from before the migrations."""
    with engine.connect() as connection:
        return _revision(connection)


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> Upgrade:
    """Bring the warehouse to `revision` (the newest by default) in one transaction; nothing to do is cheap.

    A warehouse at a revision this code does not know was migrated by newer code: refused (FatalError)
    rather than used with a schema this code was not written for.
    """
    target = head() if revision == "head" else revision
    with engine.connect() as connection:
        found = _revision(connection)
        connection.rollback()
        if found == target:
            return Upgrade(found, target)
        with locks.exclusive_on(connection, MIGRATION_LOCK):
            # Read again under the lock: another process may have upgraded it meanwhile.
            before = _revision(connection)
            if before is not None and not known(before):
                raise FatalError(
                    f"the warehouse is at schema revision {before}, which this version of baocao does not know "
                    f"(its newest is {head()}): newer code migrated it; run that version"
                )
            command.upgrade(alembic_config(connection), target)
            after = _revision(connection)
    assert after == target, f"warehouse at {after} after upgrading to {target}"
    return Upgrade(before, after)
