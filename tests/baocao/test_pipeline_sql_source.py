"""A legacy `hoso` database (MariaDB) as a report source, configured in TOML only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.layouts.tthc import COUNT_COLUMNS
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.legacy_sql import delete_hoso, seed_hoso
from baocao.simulators.onestop.expected_results import tthc_results_total
from baocao.simulators.onestop.generator import generate, write_registry_csv
from tests import services

SOURCE_URL_ENV = "BAOCAO_TEST_LEGACY_DB_URL"


@pytest.fixture
def mariadb_url(mariadb_admin: sa.Engine) -> Iterator[str]:
    name = f"hoso_{uuid.uuid4().hex[:8]}"
    with mariadb_admin.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    yield services.MARIADB_URL.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    with mariadb_admin.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE {name}"))


def test_legacy_database_source_with_vanishing_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mariadb_url: str
) -> None:
    dataset = generate(seed=21, volume=2000, start=date(2026, 9, 15), end=date(2026, 11, 14))
    cut = datetime(2026, 11, 15, 2, 0, tzinfo=LOCAL_TIMEZONE)
    seed_hoso(mariadb_url, dataset, cut)
    monkeypatch.setenv(SOURCE_URL_ENV, mariadb_url)
    for name in (demo.CENTRAL_TOKEN_ENV, demo.CLIENT_ID_ENV, demo.CLIENT_SECRET_ENV):
        monkeypatch.setenv(name, "unused")
    config_path = tmp_path / "baocao.toml"
    demo.write_config(config_path, onestop_url="http://127.0.0.1:9", central_url="http://127.0.0.1:9/api/v1")
    text = config_path.read_text(encoding="utf-8").replace('sources = ["onestop"]', 'sources = ["legacy"]')
    # The mapping of department-systems.md §2 is the kind's default; only the connection is configured.
    config_path.write_text(
        text + f'\n[[sources]]\nname = "legacy"\nkind = "sql_legacy"\nurl_env = "{SOURCE_URL_ENV}"\n', encoding="utf-8"
    )
    write_registry_csv(dataset, tmp_path / "agencies.csv")
    config = load_config(config_path)

    first = pipeline.validate_batch(config, pipeline.extract(config, "legacy", now=cut.replace(tzinfo=None)))
    assert first.quarantined == 0
    pipeline.aggregate(config, "TTHC_RESULTS", "2026-11")
    expected = tthc_results_total(
        [d for d in dataset.current_dossiers(cut) if not d.deleted], date(2026, 10, 15), date(2026, 11, 14)
    )
    total = pipeline.report_summary(config, "TTHC_RESULTS", "2026-11")
    assert {k: total[k] for k in COUNT_COLUMNS} == {k: expected[k] for k in COUNT_COLUMNS}

    # A clerk deletes rows: nothing marks them, they simply vanish from the table.
    counted = [d for d in dataset.current_dossiers(cut) if not d.deleted and d.status.value != "CANCELLED"][:25]
    assert delete_hoso(mariadb_url, [d.code for d in counted]) == 25
    pipeline.validate_batch(config, pipeline.extract(config, "legacy", now=cut.replace(tzinfo=None)))
    engine = pipeline.engine_for(config)
    with engine.connect() as connection:
        flagged = set(
            connection.execute(sa.select(tables.dossiers.c.code).where(tables.dossiers.c.deleted.is_(True))).scalars()
        )
    assert {d.code for d in counted} <= flagged
    pipeline.aggregate(config, "TTHC_RESULTS", "2026-11")
    remaining = [d for d in dataset.current_dossiers(cut) if not d.deleted and d.code not in {c.code for c in counted}]
    expected_after = tthc_results_total(remaining, date(2026, 10, 15), date(2026, 11, 14))
    total_after = pipeline.report_summary(config, "TTHC_RESULTS", "2026-11")
    assert total_after["received_total"] == expected_after["received_total"] < total["received_total"]
