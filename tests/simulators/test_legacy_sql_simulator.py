"""The legacy `hoso` simulator: §2's table, filled from the one-stop generator, moved forward in time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.simulators.legacy_sql import (
    CHANNEL_CODES,
    STATUS_CODES,
    advance_hoso,
    delete_hoso,
    hoso_row,
    seed_hoso,
    update_hoso,
)
from baocao.simulators.onestop.generator import Dataset, generate
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Status

SEEDED_AT = datetime(2026, 10, 20, 12, 0, tzinfo=LOCAL_TIMEZONE)
SECTION_2_COLUMNS = {
    "ma_hoso": sa.String,
    "ma_donvi": sa.String,
    "ma_thutuc": sa.String,
    "ma_linhvuc": sa.String,
    "ten_linhvuc": sa.String,
    "hinhthuc_nop": sa.Integer,
    "ngay_nhan": sa.DateTime,
    "ngay_hen_tra": sa.DateTime,
    "ngay_tra": sa.DateTime,
    "trang_thai": sa.Integer,
    "co_phi": sa.SmallInteger,
    "tt_truc_tuyen": sa.SmallInteger,
    "da_so_hoa": sa.SmallInteger,
    "ho_ten": sa.String,
    "so_cccd": sa.String,
    "dien_thoai": sa.String,
    "ngay_capnhat": sa.DateTime,
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=31, volume=1_500, start=date(2026, 9, 15), end=date(2026, 11, 14))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'legacy.db'}"


def rows(url: str) -> dict[str, dict[str, object]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = {row["ma_hoso"]: dict(row) for row in connection.execute(sa.text("SELECT * FROM hoso")).mappings()}
    engine.dispose()
    return found


def test_the_table_has_the_columns_of_section_2(dataset: Dataset, url: str) -> None:
    seed_hoso(url, dataset, SEEDED_AT)
    engine = sa.create_engine(url)
    columns = {column["name"]: column["type"] for column in sa.inspect(engine).get_columns("hoso")}
    engine.dispose()
    assert list(columns) == list(SECTION_2_COLUMNS)
    for name, kind in SECTION_2_COLUMNS.items():
        assert isinstance(columns[name], kind), name


def test_rows_are_the_state_at_a_moment_in_the_old_application_s_words(dataset: Dataset, url: str) -> None:
    count = seed_hoso(url, dataset, SEEDED_AT)
    stored = rows(url)
    state = dataset.current_dossiers(SEEDED_AT)
    assert count == len(stored) == sum(not d.deleted for d in state)
    assert not {d.code for d in state if d.deleted} & set(stored)
    for dossier in state[:: max(1, len(state) // 50)]:
        if dossier.deleted:
            continue
        row = stored[dossier.code]
        assert row["hinhthuc_nop"] == CHANNEL_CODES[dossier.channel]
        assert row["trang_thai"] == STATUS_CODES[dossier.status]
        assert row["co_phi"] in (0, 1) and row["ho_ten"] == dossier.applicant.name
        # Naive local wall time, as the old application writes it.
        assert row["ngay_nhan"] == str(dossier.received_at.replace(tzinfo=None)) + ".000000"
    assert set(STATUS_CODES.values()) >= {row["trang_thai"] for row in stored.values()}
    assert seed_hoso(url, dataset, SEEDED_AT) == count  # seeding again starts afresh


def test_moving_forward_updates_in_place_inserts_and_deletes(dataset: Dataset, url: str) -> None:
    seed_hoso(url, dataset, SEEDED_AT)
    changes = advance_hoso(url, dataset, SEEDED_AT, dataset.horizon)
    stored = rows(url)
    latest = {d.code: d for d in dataset.current_dossiers(dataset.horizon) if not d.deleted}
    assert set(stored) == set(latest)
    assert changes.deleted and not changes.deleted & set(stored)
    assert changes.inserted and changes.updated
    for code in changes.updated | changes.inserted:
        expected = {key: value for key, value in hoso_row(latest[code]).items() if "ngay" not in key}
        assert {key: stored[code][key] for key in expected} == expected


def test_helpers_update_and_delete_single_rows(dataset: Dataset, url: str) -> None:
    seed_hoso(url, dataset, SEEDED_AT)
    first, second = sorted(rows(url))[:2]
    later = datetime(2027, 1, 2, 3, 4, 5, 678)
    assert update_hoso(url, {first: {"trang_thai": STATUS_CODES[Status.CANCELLED]}}, later) == 1
    assert delete_hoso(url, [second, "NO-SUCH-CODE"]) == 1
    stored = rows(url)
    assert second not in stored
    assert stored[first]["trang_thai"] == 9
    assert stored[first]["ngay_capnhat"] == str(later.replace(microsecond=0)) + ".000000"
    aware = (later + timedelta(hours=1)).replace(tzinfo=LOCAL_TIMEZONE)
    update_hoso(url, {first: {}}, aware.astimezone(UTC))  # an aware time is stored as local wall time
    assert rows(url)[first]["ngay_capnhat"] == "2027-01-02 04:04:05.000000"
