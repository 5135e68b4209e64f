"""Shared fixtures: real databases (SQLite files, a throw-away PostgreSQL database per test session, MariaDB).

Which servers they are, and what happens on a machine without them, is `tests/services.py`.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
import sqlalchemy as sa

from tests import services

_NOTES: list[str] = []  # said once at the end of the run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for note in _NOTES:
        terminalreporter.write_line(note)


class _OneImportName(importlib.abc.MetaPathFinder):
    """The tests run from the repository's root, which is on sys.path, so its folders would import as
    top-level packages too (`transforms` beside `baocao.transforms`). Production code knows only
    `baocao.*`; refusing the bare names here makes a stray one (a string passed to importlib, say) fail
    the tests instead of passing here and failing in an installed wheel."""

    FOLDERS = frozenset({"connectors", "transforms", "expectations", "simulators"})

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] in self.FOLDERS:
            raise ModuleNotFoundError(f"No module named {fullname!r}: the package is baocao.{fullname}")
        return None


sys.meta_path.insert(0, _OneImportName())


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The session's PostgreSQL server (database `test`): `$BAOCAO_TEST_POSTGRES`, else one of our own.

    Outside CI an unreachable server is replaced by the embedded one, started once for the session; its
    URL is put in `$BAOCAO_TEST_POSTGRES` for the session, so subprocesses the tests start follow it.
    """
    reason = services.unreachable_reason(services.POSTGRES_URL)
    if reason is None:
        yield services.POSTGRES_URL
        return
    if services.under_ci():
        pytest.fail(
            f"PostgreSQL not reachable at {services.POSTGRES_URL} under CI, where .ci/run starts it: {reason}",
            pytrace=False,
        )
    server = services.EmbeddedPostgres.start()
    _NOTES.append(
        f"PostgreSQL not reachable at {services.POSTGRES_URL} ({reason.splitlines()[0]}): "
        f"the PostgreSQL tests ran on an embedded server, {server.url}"
    )
    previous = os.environ.get("BAOCAO_TEST_POSTGRES")
    os.environ["BAOCAO_TEST_POSTGRES"] = server.url
    try:
        yield server.url
    finally:
        if previous is None:
            os.environ.pop("BAOCAO_TEST_POSTGRES", None)
        else:
            os.environ["BAOCAO_TEST_POSTGRES"] = previous
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"baocao_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def mariadb_admin() -> Iterator[sa.Engine]:
    """The MariaDB server (`$BAOCAO_TEST_MARIADB`), as root: skipped without it, except under CI."""
    reason = services.unreachable_reason(services.MARIADB_URL)
    if reason is not None:
        if services.under_ci():
            pytest.fail(
                f"MariaDB not reachable at {services.MARIADB_URL} under CI, where .ci/run starts it: {reason}",
                pytrace=False,
            )
        pytest.skip(f"MariaDB not reachable at {services.MARIADB_URL}: {reason}")
    engine = sa.create_engine(services.MARIADB_URL, connect_args={"connect_timeout": 3})
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The warehouse on the embedded default (SQLite) and on production's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('warehouse') / 'warehouse.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()
