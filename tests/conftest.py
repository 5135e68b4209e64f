"""Shared fixtures: real databases (SQLite files, a throw-away PostgreSQL database per test session)."""

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

POSTGRES_ADMIN_URL = os.environ.get("BAOCAO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"baocao_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
