"""The SQLAlchemy dialect through which Great Expectations' SQL engine validates staged batches in DuckDB.

Batches are staged as Parquet and checked by DuckDB (columnar, both cores), where the same suite on
the warehouse took minutes per million rows. Three gaps between GX 1.x and `duckdb_engine` are
closed here, and only here:

* GX reads a query's rows after it has closed the connection; DuckDB drops a pending result when
  its connection rolls back, so GX saw no rows at all. Results are fetched whole before that.
* GX knows no DuckDB dialect, so it refuses regular expressions. DuckDB speaks PostgreSQL's SQL
  (`duckdb_engine` builds on SQLAlchemy's PostgreSQL dialect, and `~` is a regex match), so the
  dialect introduces itself as `postgresql` to GX.
* `x IN (…300 literals…)` inside the `CASE` of GX's bundled counts is evaluated as a chain of
  comparisons (4.5 s on 2M rows); `x = ANY([…])` is one hashed lookup (0.06 s) with the same meaning.

And one setting: GX lists failing records with `LIMIT n`, which makes DuckDB keep the file's row
order across its threads; the order of a list of failing records means nothing here, and without
it those scans take a third less time (`preserve_insertion_order = false`).

Use the URL `duckdb+gx:///path/to/file.duckdb`; `register` (called by `expectations.gx_adapter.install`)
makes SQLAlchemy find the dialect under it.
"""

from __future__ import annotations

import re
from typing import Any

from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGCompiler
from sqlalchemy.dialects.postgresql.psycopg2 import PGExecutionContext_psycopg2
from sqlalchemy.engine import cursor as sa_cursor
from sqlalchemy.sql import elements

DRIVER = "duckdb+gx"
_EXPANDING = re.compile(r"^\((__\[POSTCOMPILE_\w+\])\)$")


class _BufferedExecutionContext(PGExecutionContext_psycopg2):  # duckdb_engine's own context class
    def post_exec(self) -> None:
        super().post_exec()
        if self.cursor.description is not None:
            self.cursor_fetch_strategy = sa_cursor.FullyBufferedCursorFetchStrategy(self.cursor)


class _Compiler(PGCompiler):  # duckdb_engine's own compiler class
    def _as_any(self, binary: Any, **kw: Any) -> str | None:
        right = binary.right
        if not (isinstance(right, elements.BindParameter) and right.expanding and right.value):
            return None  # an empty list keeps SQLAlchemy's own rendering, which depends on the parentheses
        match = _EXPANDING.match(self.process(right, **kw))
        if match is None:
            return None
        return f"{self.process(binary.left, **kw)} = ANY([{match[1]}])"

    def visit_in_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        rendered = self._as_any(binary, **kw)
        return f"({rendered})" if rendered else str(self._generate_generic_binary(binary, " IN ", **kw))

    def visit_not_in_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        rendered = self._as_any(binary, **kw)
        return f"(NOT ({rendered}))" if rendered else str(super().visit_not_in_op_binary(binary, operator, **kw))


class GxDuckDBDialect(DuckDBDialect):
    name = "postgresql"
    execution_ctx_cls = _BufferedExecutionContext
    statement_compiler = _Compiler
    # duckdb_engine does not support SQLAlchemy's statement cache; the IN rendering above needs the
    # list's value at compile time anyway.
    supports_statement_cache = False

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        cparams["config"] = {"preserve_insertion_order": False, **cparams.get("config", {})}
        return super().connect(*cargs, **cparams)


def register() -> None:
    """Make `duckdb+gx://` URLs use `GxDuckDBDialect` (a second call changes nothing)."""
    registry.register("duckdb.gx", __name__, GxDuckDBDialect.__name__)
