"""The DuckDB dialect GX validates staged batches through: same answers as plain DuckDB, rows that survive GX's
way of closing connections, and regular expressions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect

from baocao.expectations.gx_adapter import duckdb_dialect


def _engine(tmp_path: Path) -> sa.Engine:
    database = tmp_path / "t.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a'), ('b'), ('c'), (NULL)) AS v(x)")
    duckdb_dialect.register()  # what gx_adapter.install does for it
    return sa.create_engine(f"{duckdb_dialect.DRIVER}:///{database}")


def test_builds_on_duckdb_engines_own_classes() -> None:
    # The subclasses replace duckdb_engine's context and compiler; if it changes them, so must we.
    assert issubclass(duckdb_dialect._BufferedExecutionContext, DuckDBDialect.execution_ctx_cls)
    assert issubclass(duckdb_dialect._Compiler, DuckDBDialect.statement_compiler)


def test_rows_are_read_after_the_connection_closed(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.connect() as connection:
        result = connection.execute(sa.text("SELECT x FROM t ORDER BY x"))
    assert result.fetchall() == [("a",), ("b",), ("c",), (None,)]
    engine.dispose()


def test_in_and_not_in_keep_their_meaning(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    table = sa.table("t", sa.column("x"))

    def count(condition: sa.ColumnElement[bool]) -> int:
        with engine.connect() as connection:
            statement = sa.select(sa.func.sum(sa.case((condition, 1), else_=0))).select_from(table)
            return int(connection.execute(statement).scalar_one() or 0)

    assert count(table.c.x.in_(["a", "c", "z"])) == 2
    assert count(table.c.x.not_in(["a", "c", "z"])) == 1  # NULL is neither in nor not in
    assert count(table.c.x.in_([])) == 0
    assert count(table.c.x.not_in([])) == 4
    assert count(sa.and_(table.c.x.isnot(None), table.c.x.op("~")("^[ab]$"))) == 2
    assert "= ANY(" in str(sa.select(table).where(table.c.x.in_(["a"])).compile(engine))
    engine.dispose()
