"""Alembic's entry point for the warehouse migrations: runs them on the connection that
`baocao.storage.migrations` hands over (in its locked transaction), or, for a developer's
`alembic` command (alembic.ini at the repository root), on the warehouse named by `-x url=…`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from baocao.core.tables import metadata


def _run(connection: sa.Connection) -> None:
    # compare_type: a changed column type is drift too (autogenerate and the drift test see it).
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    # Inside the caller's transaction Alembic opens none of its own; the caller commits.
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    handed_over = context.config.attributes.get("connection")
    if handed_over is not None:
        _run(handed_over)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the warehouse: alembic -x url=sqlite:///var/warehouse.db … (or use `baocao db upgrade`)")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


_main()
