"""The legacy SQL connector against the `hoso` simulator on real SQLite, PostgreSQL and MariaDB, one mapping."""

from __future__ import annotations

import re
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import baocao.connectors.sql_legacy as sql_legacy
from baocao.connectors.sql_legacy import HOSO_FIELD_MAP, HOSO_VALUE_MAPS, LegacySqlSource, reconcile
from baocao.core.canonical import Col
from baocao.core.errors import ConfigurationError, FatalError, RetriableError
from baocao.simulators.legacy_sql import (
    CHANNEL_CODES,
    PERSONAL_COLUMNS,
    STATUS_CODES,
    advance_hoso,
    delete_hoso,
    seed_hoso,
    update_hoso,
)
from baocao.simulators.onestop.generator import Dataset, generate
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Dossier, Status
from baocao.transforms.canonical import canonical_record
from tests import services

MARIADB_ADMIN_URL = services.MARIADB_URL  # the `mariadb_admin` fixture (tests/conftest.py) skips without it

# The table is seeded as the department's system stood on this day, then moved to the data's horizon.
SEEDED_AT = datetime(2026, 11, 1, 8, 0, tzinfo=LOCAL_TIMEZONE)
FAR_FUTURE = datetime(2030, 1, 1)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=23, volume=2_000, start=date(2026, 9, 15), end=date(2026, 11, 14))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def legacy_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty database of each kind for one test, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legacy.db'}"
        return
    name = f"legacy_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        base = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        yield f"{base}?options=-csearch_path%3D{name}"
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()
        return
    admin: sa.Engine = request.getfixturevalue("mariadb_admin")
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE `{name}`"))


def source(url: str, **options: Any) -> LegacySqlSource:
    return LegacySqlSource(url, "hoso", HOSO_FIELD_MAP, name="legacy-test", chunk_size=150, **options)


def naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(LOCAL_TIMEZONE).replace(tzinfo=None)


def present(dataset: Dataset, as_of: datetime) -> dict[str, Dossier]:
    return {d.code: d for d in dataset.current_dossiers(as_of) if not d.deleted}


def assert_matches(row: dict[str, Any], dossier: Dossier) -> None:
    assert row[Col.CODE] == dossier.code
    assert row[Col.AGENCY_CODE] == dossier.agency_code
    assert row[Col.PROCEDURE_CODE] == dossier.procedure_code
    assert row[Col.FIELD_CODE] == dossier.field_code
    assert row[Col.FIELD_NAME] == dossier.field_name
    assert row[Col.CHANNEL] == dossier.channel.value
    assert row[Col.STATUS] == dossier.status.value
    assert row[Col.RECEIVED_AT] == naive(dossier.received_at)
    assert row[Col.DUE_AT] == naive(dossier.due_at)
    assert row[Col.FINISHED_AT] == naive(dossier.finished_at)
    assert row[Col.UPDATED_AT] == naive(dossier.updated_at)
    assert row[Col.FEE_REQUIRED] is dossier.fee_required
    assert row[Col.PAID_ONLINE] is dossier.paid_online
    assert row[Col.DIGITIZED] is dossier.digitized
    assert row[Col.DELETED] is False


def test_a_full_pull_is_the_dataset_state_and_carries_no_personal_data(dataset: Dataset, legacy_url: str) -> None:
    seeded = seed_hoso(legacy_url, dataset, SEEDED_AT)
    truth = present(dataset, SEEDED_AT)
    assert seeded == len(truth) > 1_000
    with source(legacy_url) as legacy:
        raw = list(legacy.changed_rows(None, FAR_FUTURE))
    assert len(raw) == len(truth)
    assert {key for row in raw for key in row} == set(HOSO_FIELD_MAP.values())
    personal = {value for d in truth.values() for value in (d.applicant.name, d.applicant.id_number, d.applicant.phone)}
    assert not personal & {value for row in raw for value in row.values()}
    order = [(row["ngay_capnhat"], row["ma_hoso"]) for row in raw]
    assert order == sorted(order)

    rows = [canonical_record(row, HOSO_FIELD_MAP, HOSO_VALUE_MAPS) for row in raw]
    for row in rows:
        assert_matches(row, truth[row[Col.CODE]])
    # Every status and channel code was met and mapped (the mix is wide enough to check the maps).
    assert {row[Col.STATUS] for row in rows} == {status.value for status in STATUS_CODES}
    assert {row[Col.CHANNEL] for row in rows} == {channel.value for channel in CHANNEL_CODES}


def test_an_incremental_pull_after_in_place_updates_returns_exactly_the_changed_rows(
    dataset: Dataset, legacy_url: str
) -> None:
    seed_hoso(legacy_url, dataset, SEEDED_AT)
    changes = advance_hoso(legacy_url, dataset, SEEDED_AT, dataset.horizon)
    assert changes.updated and changes.inserted and changes.deleted
    truth = present(dataset, dataset.horizon)
    seeded_at, horizon = naive(SEEDED_AT), naive(dataset.horizon)
    assert seeded_at is not None and horizon is not None
    with source(legacy_url) as legacy:
        # Times are whole seconds: a change after the seed time is at least a second later.
        rows = [
            canonical_record(row, HOSO_FIELD_MAP, HOSO_VALUE_MAPS)
            for row in legacy.changed_rows(seeded_at + SECOND, horizon + SECOND)
        ]
        assert [row[Col.CODE] for row in rows if row[Col.CODE] in changes.deleted] == []
        assert {row[Col.CODE] for row in rows} == changes.updated | changes.inserted
        assert len(rows) == len(changes.updated | changes.inserted)
        for row in rows:
            assert_matches(row, truth[row[Col.CODE]])

        # A clerk corrects three dossiers later on; only they come back, in their new state.
        corrected_at = horizon + timedelta(days=3)
        corrected = sorted(truth)[:3]
        update_hoso(
            legacy_url,
            {code: {"trang_thai": STATUS_CODES[Status.WITHDRAWN], "ngay_tra": corrected_at} for code in corrected},
            corrected_at,
        )
        aware_from = corrected_at.replace(tzinfo=LOCAL_TIMEZONE) - timedelta(minutes=1)
        again = [
            canonical_record(row, HOSO_FIELD_MAP, HOSO_VALUE_MAPS)
            for row in legacy.changed_rows(aware_from, FAR_FUTURE)
        ]
        assert [row[Col.CODE] for row in again] == corrected
        assert {row[Col.STATUS] for row in again} == {Status.WITHDRAWN.value}
        assert {row[Col.UPDATED_AT] for row in again} == {corrected_at} == {row[Col.FINISHED_AT] for row in again}
        assert list(legacy.changed_rows(corrected_at + SECOND, FAR_FUTURE)) == []


def test_rows_deleted_at_the_source_are_found_by_reconciliation(dataset: Dataset, legacy_url: str) -> None:
    seed_hoso(legacy_url, dataset, SEEDED_AT)
    with source(legacy_url) as legacy:
        warehouse_codes = {row["ma_hoso"] for row in legacy.changed_rows(None, FAR_FUTURE)}
        changes = advance_hoso(legacy_url, dataset, SEEDED_AT, dataset.horizon)
        removed_by_hand = sorted(warehouse_codes - changes.deleted)[::250]
        assert delete_hoso(legacy_url, removed_by_hand) == len(removed_by_hand)

        found = reconcile(legacy.all_codes(), warehouse_codes)
        assert found.missing_in_source == changes.deleted | set(removed_by_hand)
        assert found.missing_in_warehouse == changes.inserted
        assert not found.consistent
        # What the warehouse never got can be fetched by code, whatever its change time.
        fetched = [row["ma_hoso"] for row in legacy.rows_for_codes(found.missing_in_warehouse | {"NO-SUCH-CODE"})]
        assert fetched == sorted(changes.inserted)

        # Counts per agency over a received window, then codes in that window: both match the data.
        start, end = datetime(2026, 10, 15), datetime(2026, 11, 15)
        expected = [
            d
            for d in present(dataset, dataset.horizon).values()
            if d.code not in removed_by_hand and start <= (naive(d.received_at) or start) < end
        ]
        assert legacy.period_counts(start, end) == dict(Counter(d.agency_code for d in expected))
        assert legacy.all_codes(start, end) == {d.code for d in expected}


def test_reconcile_is_a_plain_comparison_of_codes() -> None:
    found = reconcile({"A", "B", "C"}, ["B", "C", "D"])
    assert found.missing_in_source == {"D"}
    assert found.missing_in_warehouse == {"A"}
    assert found.in_both == 2
    assert reconcile(["A"], {"A"}).consistent


@pytest.mark.parametrize(
    ("columns", "options", "named"),
    [
        ({**HOSO_FIELD_MAP, "field_name": "ho_ten"}, {}, "ho_ten"),
        ({**HOSO_FIELD_MAP, "agency_code": "SO_CCCD"}, {}, "SO_CCCD"),
        ({**HOSO_FIELD_MAP, "procedure_code": "dien_thoai"}, {}, "dien_thoai"),
        (HOSO_FIELD_MAP, {"change_column": "ho_ten"}, "ho_ten"),
    ],
)
def test_a_mapping_pointing_at_a_personal_column_is_refused(
    columns: dict[str, str], options: dict[str, Any], named: str
) -> None:
    # Refused before any connection: this port has no server.
    with pytest.raises(ConfigurationError, match=f"source legacy-test .*personal column '{named}'"):
        LegacySqlSource("postgresql+psycopg://u:hunter2@127.0.0.1:1/x", columns=columns, name="legacy-test", **options)


def test_a_mapping_with_unknown_canonical_columns_or_without_a_code_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown canonical column.*recieved_at"):
        LegacySqlSource("sqlite:///x.db", columns={**HOSO_FIELD_MAP, "recieved_at": "ngay_nhan"})
    with pytest.raises(ConfigurationError, match="URL cannot be read") as unreadable:
        LegacySqlSource("not a url with hunter2")
    assert "hunter2" not in str(unreadable.value)
    without_code = {key: value for key, value in HOSO_FIELD_MAP.items() if key != "code"}
    with pytest.raises(ConfigurationError, match="no source column for 'code'"):
        LegacySqlSource("sqlite:///x.db", columns=without_code)


def test_a_wrong_table_or_column_gives_a_clear_error_naming_the_source(dataset: Dataset, legacy_url: str) -> None:
    seed_hoso(legacy_url, dataset, SEEDED_AT)
    with (
        LegacySqlSource(legacy_url, "ho_so", name="legacy-test") as legacy,
        pytest.raises(FatalError, match=r"source legacy-test \(.*table ho_so\): table 'ho_so' not found"),
    ):
        list(legacy.changed_rows(None, FAR_FUTURE))
    columns = {**HOSO_FIELD_MAP, "field_name": "ten_linh_vuc"}
    with (
        LegacySqlSource(legacy_url, columns=columns, name="legacy-test") as legacy,
        pytest.raises(FatalError, match="source legacy-test .*mapped column.* ten_linh_vuc not in the table"),
    ):
        legacy.all_codes()


def test_the_source_reads_only_and_sets_its_timeouts(dataset: Dataset, legacy_url: str) -> None:
    seed_hoso(legacy_url, dataset, SEEDED_AT)
    with source(legacy_url, statement_timeout_seconds=42) as legacy:
        with legacy.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "42s"
            elif connection.dialect.name in ("mysql", "mariadb"):
                assert connection.execute(sa.text("SELECT @@max_statement_time")).scalar() == 42
        with legacy.engine.connect() as connection, pytest.raises(sa.exc.DBAPIError):
            connection.execute(sa.text("DELETE FROM hoso"))
        assert len(legacy.all_codes()) == len(present(dataset, SEEDED_AT))


def test_connection_faults_are_retriable_and_refusals_fatal(tmp_path: Any, postgres_url: str) -> None:
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    with (
        source(unreachable, connect_timeout_seconds=2) as legacy,
        pytest.raises(RetriableError, match="source legacy-test .*127.0.0.1:1"),
    ):
        legacy.all_codes()
    with source(postgres_url.replace("postgres@", "khong_co_nguoi_nay:secret@")) as legacy:
        with pytest.raises(FatalError, match="source legacy-test .*khong_co_nguoi_nay") as refused:
            legacy.all_codes()
        assert not isinstance(refused.value, RetriableError)
        assert "secret" not in str(refused.value)
    missing_file = tmp_path / "khong-co.db"
    with source(f"sqlite:///{missing_file}") as legacy, pytest.raises(FatalError, match="unable to open"):
        legacy.all_codes()
    assert not missing_file.exists()


def test_a_refused_mariadb_login_is_fatal(mariadb_admin: sa.Engine) -> None:
    url = MARIADB_ADMIN_URL.replace("root@", "khong_co_nguoi_nay:secret@")
    with source(url) as legacy, pytest.raises(FatalError, match="Access denied") as refused:
        legacy.all_codes()
    assert not isinstance(refused.value, RetriableError)


def test_the_toml_mapping_in_the_module_docstring_is_the_mapping_in_code() -> None:
    assert sql_legacy.__doc__ is not None
    snippet = re.search(r"```toml\n(.*?)```", sql_legacy.__doc__, re.DOTALL)
    assert snippet is not None
    (configured,) = tomllib.loads(snippet.group(1))["sources"]
    assert configured["kind"] == "sql_legacy"
    assert configured["fields"] == dict(HOSO_FIELD_MAP)
    assert configured["values"] == {column: dict(words) for column, words in HOSO_VALUE_MAPS.items()}
    assert not {value.casefold() for value in configured["fields"].values()} & set(PERSONAL_COLUMNS)
