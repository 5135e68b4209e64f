"""A pull streams to staging in pieces (issue 13, item 2): what is staged equals what the whole pull, held
at once, would stage (one row per code, the latest `updated_at` winning across pieces), and the pieces
reach the disk while the source is still being read, so a long pull is never held in memory whole."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.canonical import Col
from baocao.core.sources import PulledSource
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.run.sources.kind import Extraction
from baocao.run.sources.pulls import Pulled, extract_pulled
from baocao.storage import staging
from baocao.storage.warehouse import utc_now
from baocao.transforms.canonical import canonical_frame, canonical_record, deduplicate_latest
from tests.delivery.support import SECRETS_ENV, write_config

FIELDS = {"code": "code", "agency_code": "agency_code"}
START = datetime(2026, 11, 1, 8, 0)


def records(count: int, codes: int, seed: int = 7) -> list[dict[str, Any]]:
    """Dossier versions: `codes` codes seen again and again, with times that go back and forth, ties,
    missing times, and now and then a record without a code."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        updated = START + timedelta(hours=rng.randrange(0, 48))  # ties are frequent
        made.append(
            {
                "code": None if n % 37 == 36 else f"HS-{rng.randrange(codes):04d}",
                "agency_code": "000.00.01.H01",
                "status": rng.choice(["RECEIVED", "RESOLVED"]),
                "received_at": (START - timedelta(days=3)).isoformat(),
                "due_at": (START + timedelta(days=rng.randrange(1, 9))).isoformat(),
                "updated_at": None if rng.random() < 0.1 else updated.isoformat(),
                "rating": n,  # tells the versions of one code apart
            }
        )
    return made


def held_whole(pulled: list[dict[str, Any]]) -> pd.DataFrame:
    """What staging held before streaming: the whole pull mapped, de-duplicated and framed at once."""
    rows = [canonical_record(record, FIELDS, {}) for record in pulled]
    return sorted_frame(staging.to_table(canonical_frame(deduplicate_latest(r for r in rows if r[Col.CODE]))))


def sorted_frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas().sort_values(Col.CODE.value).reset_index(drop=True)


def staged(path: Path) -> pd.DataFrame:
    return sorted_frame(pa.Table.from_batches(list(staging.read_batch(path))))


def test_pieces_stage_what_the_whole_pull_would_latest_winning_across_pieces(tmp_path: Path) -> None:
    pulled = records(600, codes=40)
    writer = staging.LatestByCode(tmp_path, "streamed-1")
    for start in range(0, len(pulled), 50):
        rows = [canonical_record(record, FIELDS, {}) for record in pulled[start : start + 50]]
        writer.write(staging.to_table(canonical_frame(deduplicate_latest(r for r in rows if r[Col.CODE]))))
    assert writer.close() == 40
    assert writer.pieces == 12
    expected = held_whole(pulled)
    pd.testing.assert_frame_equal(staged(writer.path), expected)
    assert list(tmp_path.iterdir()) == [writer.path]  # the scratch file is gone


def test_a_later_piece_wins_on_a_tie_and_a_timed_row_beats_an_untimed_one(tmp_path: Path) -> None:
    def piece(*rows: tuple[str, str | None, int]) -> pa.Table:
        made = [
            canonical_record({"code": code, "updated_at": updated, "rating": rating}, FIELDS, {})
            for code, updated, rating in rows
        ]
        return staging.to_table(canonical_frame(made))

    writer = staging.LatestByCode(tmp_path, "ties")
    writer.write(piece(("A", "2026-11-01T10:00:00", 1), ("B", "2026-11-01T10:00:00", 1), ("C", None, 1)))
    writer.write(piece(("A", "2026-11-01T10:00:00", 2), ("B", "2026-11-01T09:00:00", 2), ("C", None, 2)))
    writer.write(piece(("B", None, 3), ("D", None, 3)))
    writer.close()
    ratings = dict(zip(*staged(writer.path)[[Col.CODE.value, Col.RATING.value]].to_dict("list").values(), strict=True))
    assert ratings == {"A": 2, "B": 1, "C": 2, "D": 3}


def test_an_aborted_pull_leaves_no_file(tmp_path: Path) -> None:
    writer = staging.LatestByCode(tmp_path, "aborted")
    rows = [canonical_record(record, FIELDS, {}) for record in records(20, codes=5) if record["code"]]
    writer.write(staging.to_table(canonical_frame(rows)))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Extraction:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/api/v1"))
    return Extraction(config, pipeline.engine_for(config), tmp_path / "staging", utc_now())


def test_a_pull_reaches_the_disk_piece_by_piece_while_the_source_is_read(extraction: Extraction) -> None:
    pulled = records(100, codes=15)
    source = extraction.config.source("onestop")
    assert isinstance(source, PulledSource)
    scratch_sizes: list[int] = []

    def stream() -> Iterator[dict[str, Any]]:
        for n, record in enumerate(pulled):
            if n and n % 10 == 0:
                # Nothing is kept back: the pieces read so far are in the scratch file already.
                (scratch,) = extraction.staging_dir.glob(".*.pieces.*.partial")
                scratch_sizes.append(scratch.stat().st_size)
            yield record

    batch_id = extract_pulled(
        extraction, source, lambda _from, _to: Pulled(stream(), set()), FIELDS, {}, piece_records=10
    )
    assert len(scratch_sizes) == 9 and all(a < b for a, b in zip(scratch_sizes, scratch_sizes[1:], strict=False))
    staged_path = staging.batch_file(extraction.staging_dir, batch_id)
    pd.testing.assert_frame_equal(staged(staged_path), held_whole(pulled))
    assert sorted(path.name for path in extraction.staging_dir.iterdir()) == [staged_path.name]
    with extraction.engine.connect() as connection:
        counts = connection.execute(
            sa.select(tables.batches.c.pulled, tables.batches.c.staged).where(tables.batches.c.batch_id == batch_id)
        ).one()
        without_code = connection.execute(
            sa.select(sa.func.count()).where(tables.quarantine.c.batch_id == batch_id)
        ).scalar_one()
    assert tuple(counts) == (100, len(held_whole(pulled))) and without_code == 2  # records 36 and 73
