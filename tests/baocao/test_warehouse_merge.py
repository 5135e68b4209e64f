"""Merging staged batches into `dossiers`: the upsert path and the initial-load path (PostgreSQL and
SQLite) give the same table, the primary key and index survive the initial load, and a failed load
changes nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.storage import staging, warehouse
from baocao.transforms.canonical import canonical_frame, canonical_record
from tests.expectations.test_suites import good


def _stage(engine: sa.Engine, tmp_path: Path, batch: str, records: list[dict[str, object]]) -> Path:
    warehouse.start_batch(engine, batch, "test", "rest_onestop", None, datetime(2026, 11, 20))
    frame = canonical_frame([canonical_record(record, {}, {}) for record in records])
    warehouse.stage_dossiers(engine, batch, frame, pulled=len(records), staging_dir=tmp_path / "staging")
    return staging.batch_file(tmp_path / "staging", batch)


def _stored(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(tables.dossiers.c.code, tables.dossiers.c.status, tables.dossiers.c.batch_id)
        )
        return {code: (status, batch) for code, status, batch in rows}


def _first_batch() -> list[dict[str, object]]:
    return [good(f"d-{n:04d}", status="PROCESSING", finished_at=None) for n in range(300)]


def _second_batch() -> list[dict[str, object]]:
    # 100 newer versions, 50 older ones (must not win), 50 new dossiers.
    newer = [good(f"d-{n:04d}", updated_at="2026-10-26T10:00:00+07:00") for n in range(100)]
    older = [good(f"d-{n:04d}", updated_at="2026-10-01T10:00:00+07:00") for n in range(100, 150)]
    fresh = [good(f"e-{n:04d}") for n in range(50)]
    return newer + older + fresh


@pytest.mark.parametrize("initial_load_min_rows", [0, 10**9], ids=["initial-load", "upsert"])
def test_both_merge_paths_give_the_same_dossiers(
    warehouse_url: str, tmp_path: Path, initial_load_min_rows: int
) -> None:
    engine = warehouse.connect(warehouse_url)
    first = _stage(engine, tmp_path, "b1", _first_batch())
    warehouse.record_quarantine(engine, "b1", "test", [("d-0299", "Known status", "status=X")], "validate")
    assert warehouse.merge_batch(engine, "b1", first, initial_load_min_rows=initial_load_min_rows) == 299
    second = _stage(engine, tmp_path, "b2", _second_batch())
    assert warehouse.merge_batch(engine, "b2", second, initial_load_min_rows=initial_load_min_rows) == 200

    assert list((tmp_path / "staging").iterdir()) == []  # staged files and scratch files are gone
    stored = _stored(engine)
    assert len(stored) == 299 + 50
    assert "d-0299" not in stored
    assert all(stored[f"d-{n:04d}"] == ("RESOLVED", "b2") for n in range(100))
    assert all(stored[f"d-{n:04d}"] == ("PROCESSING", "b1") for n in range(100, 299))
    assert all(stored[f"e-{n:04d}"] == ("RESOLVED", "b2") for n in range(50))
    # The primary key and the period index are there after either path.
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("dossiers")["constrained_columns"] == ["code"]
    assert "ix_dossiers_received" in {index["name"] for index in inspector.get_indexes("dossiers")}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(tables.dossiers).values(code="d-0000", deleted=False, source="x", batch_id="x"))
    print(f"\n{engine.dialect.name}, initial_load_min_rows={initial_load_min_rows}: {len(stored)} dossiers stored")


def test_a_failed_initial_load_leaves_the_table_empty_and_indexed(warehouse_url: str, tmp_path: Path) -> None:
    engine = warehouse.connect(warehouse_url)  # an empty warehouse of its own
    # Two versions of one dossier that validation did not hold back: the primary key cannot be added.
    staged = _stage(engine, tmp_path, "dup", [good("d-1"), good("d-2"), good("d-1", status="RETURNED")])
    with pytest.raises(sa.exc.IntegrityError):
        warehouse.merge_batch(engine, "dup", staged, initial_load_min_rows=0)
    assert _stored(engine) == {}
    assert warehouse.batch_summary(engine, "dup")["state"] == "STAGED"
    assert staged.exists()
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("dossiers")["constrained_columns"] == ["code"]
    assert "ix_dossiers_received" in {index["name"] for index in inspector.get_indexes("dossiers")}


@pytest.mark.parametrize("batch_id", ["", ".hidden", "../escape", "a/b", "a b", "x;DROP"])
def test_a_batch_id_that_could_name_another_file_is_refused(tmp_path: Path, batch_id: str) -> None:
    assert not staging.valid_batch_id(batch_id)
    with pytest.raises(ValueError, match="invalid batch id"):
        staging.batch_file(tmp_path, batch_id)
    assert staging.valid_batch_id("commune-20261201T020000-0a1b2c3d.v2")
