"""The tests' own PostgreSQL (tests/services.py), used where no server answers: it must keep working on
machines that have one too, where the session never needs it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import services


def test_the_embedded_postgresql_serves_a_test_database_on_loopback_and_leaves_nothing() -> None:
    server = services.EmbeddedPostgres.start()
    try:
        assert server.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert services.unreachable_reason(server.url) is None
        engine = sa.create_engine(server.url)
        with engine.connect() as connection:
            database, encoding, collation, superuser = connection.execute(
                sa.text(
                    "SELECT current_database(), pg_encoding_to_char(encoding), datcollate,"
                    " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
                    " FROM pg_database WHERE datname = current_database()"
                )
            ).one()
        engine.dispose()
        assert (database, encoding, collation, superuser) == ("test", "UTF8", "C.UTF-8", True)
    finally:
        server.stop()
    assert not server.folder.exists()
    assert services.unreachable_reason(server.url) is not None


def test_a_closed_port_is_unreachable_with_the_drivers_reason() -> None:
    reason = services.unreachable_reason("postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert reason is not None and "127.0.0.1" in reason


def test_ci_is_recognised_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert services.under_ci()
    monkeypatch.setenv("CI", "false")
    assert not services.under_ci()
    monkeypatch.delenv("CI")
    assert not services.under_ci()
