"""Two processes replacing the same thing at the same moment, on SQLite and PostgreSQL: two imports of
one source's catalogue, two aggregations of one period, two merges of one batch. Neither fails, and
the warehouse holds what one writer alone would have stored.

Each test starts two writer processes that meet at a barrier before every round, so their
transactions overlap (without the locks of `baocao.storage.locks`, PostgreSQL's READ COMMITTED lets
both delete and both insert, and the second dies on the primary key: `UniqueViolation … procedures_pkey`).
"""

from __future__ import annotations

import multiprocessing.context
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from baocao.core import tables
from baocao.core.layouts.tthc import COUNT_COLUMNS
from baocao.core.periods import parse_period
from baocao.core.report import Completeness, Report, ReportType
from baocao.core.states import BatchState
from baocao.storage import reports as stored_reports
from baocao.storage import staging, warehouse
from baocao.transforms.canonical import canonical_frame, canonical_record
from tests.expectations.test_suites import good
from tests.storage import writers
from tests.transforms.test_online_services import procedure

ROUNDS = 4
PERIOD = parse_period("2026-11")
AGENCY = "000.00.01.H99"
ONLINE_TYPES = ("FULL", "PARTIAL", "NONE")


def _catalogues(entries: int) -> list[list[dict[str, Any]]]:
    """One catalogue per round, each changing every entry's online type (so each round adds versions)."""
    return [
        [procedure(f"1.{number:06d}", AGENCY, ONLINE_TYPES[(number + round_) % 3]) for number in range(entries)]
        for round_ in range(ROUNDS)
    ]


def _published(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    return sorted(tuple(row[name] for name in tables.PROCEDURE_COLUMNS) for row in rows)


def test_two_imports_of_one_catalogue_at_once(
    warehouse_url: str, writer_processes: multiprocessing.context.BaseContext
) -> None:
    engine = warehouse.connect(warehouse_url)
    catalogues = _catalogues(1500)
    started = time.monotonic()
    returned = writers.run_together(
        writer_processes, writers.replace_catalogue, warehouse_url, ROUNDS, "danh-muc", catalogues
    )
    seconds = time.monotonic() - started

    assert all(values == [1500] * ROUNDS for values in returned.values())
    with engine.connect() as connection:
        stored = connection.execute(sa.select(tables.procedures)).mappings().all()
        history = connection.execute(sa.select(tables.procedure_history)).mappings().all()
        imports = connection.execute(sa.select(tables.catalogue_imports)).mappings().all()
    # What one importer alone would have stored: the last catalogue now, and in the history each
    # round's version of each entry once (the second import of a round finds nothing changed).
    assert _published(stored) == _published(catalogues[-1])
    assert _published(history) == sorted(_published([entry for catalogue in catalogues for entry in catalogue]))
    assert _published([row for row in history if row["valid_to"] is None]) == _published(catalogues[-1])
    assert len(imports) == writers.WRITERS * ROUNDS and {row["entries"] for row in imports} == {1500}
    engine.dispose()
    print(f"\n{engine.dialect.name}: {writers.WRITERS} writers x {ROUNDS} catalogue imports at once in {seconds:.1f} s")


def _report(round_: int, rows: int, period_id: str = PERIOD.id) -> Report:
    """A TTHC_RESULTS report of `rows` agency × field lines whose counts say which round wrote them."""
    lines = pd.DataFrame(
        [
            {
                "kind": "ROW",
                "level": "PROVINCE",
                "agency": f"A{number // 50:03d}",
                "field": f"LV-{number % 50:02d}",
                "field_name": f"Lĩnh vực {number % 50}",
                **{name: round_ * 1000 + number for name in COUNT_COLUMNS},
                "on_time_rate": Decimal("97.50"),
            }
            for number in range(rows)
        ]
    ).astype(object)
    return Report(ReportType.TTHC_RESULTS, parse_period(period_id), {"report": lines}, Completeness(1, 1, ()))


def test_two_aggregations_of_one_period_at_once(
    warehouse_url: str, writer_processes: multiprocessing.context.BaseContext
) -> None:
    engine = warehouse.connect(warehouse_url)
    reports = [_report(round_, 1500) for round_ in range(ROUNDS)]
    other = stored_reports.store(engine, _report(9, 10, "2026-10"), {}, warehouse.utc_now())
    started = time.monotonic()
    returned = writers.run_together(writer_processes, writers.store_report, warehouse_url, ROUNDS, reports)
    seconds = time.monotonic() - started

    # Both writers stored the same content each round: one version, whichever committed first.
    expected = [stored_reports.content_hash(r.report_type, r.period, stored_reports.encode(r)) for r in reports]
    assert all(values == expected for values in returned.values())
    stored = stored_reports.load(engine, ReportType.TTHC_RESULTS, PERIOD)  # its lines match its hash
    assert stored.content_hash == expected[-1]
    assert stored.report.tables["report"].to_dict("records") == reports[-1].tables["report"].to_dict("records")
    with engine.connect() as connection:
        versions = connection.execute(
            sa.select(sa.func.count()).where(tables.report_versions.c.period_id == PERIOD.id)
        ).scalar_one()
    assert versions == 1  # the versions the rounds replaced are gone, none was left half-written
    assert stored_reports.current_hash(engine, ReportType.TTHC_RESULTS, parse_period("2026-10")) == other
    engine.dispose()
    print(f"\n{engine.dialect.name}: {writers.WRITERS} writers x {ROUNDS} aggregations at once in {seconds:.1f} s")


def test_two_merges_of_one_batch_at_once(
    warehouse_url: str, writer_processes: multiprocessing.context.BaseContext, tmp_path: Path
) -> None:
    engine = warehouse.connect(warehouse_url)
    folder = tmp_path / "staging"
    batches: list[tuple[str, str]] = []
    for round_ in range(ROUNDS):
        batch_id = f"b{round_}"
        updated = f"2026-10-{24 + round_}T10:00:00+07:00"
        records = [good(f"d-{number:05d}", updated_at=updated, rating=1 + round_) for number in range(2000)]
        warehouse.start_batch(engine, batch_id, "test", "rest_onestop", None, datetime(2026, 11, 20 + round_))
        frame = canonical_frame([canonical_record(record, {}, {}) for record in records])
        warehouse.stage_dossiers(engine, batch_id, frame, pulled=len(records), staging_dir=folder)
        batches.append((batch_id, str(staging.batch_file(folder, batch_id))))
    started = time.monotonic()
    returned = writers.run_together(writer_processes, writers.merge, warehouse_url, ROUNDS, batches)
    seconds = time.monotonic() - started

    assert all(values == [2000] * ROUNDS for values in returned.values())
    d = tables.dossiers.c
    with engine.connect() as connection:
        stored = connection.execute(sa.select(d.batch_id, d.rating, sa.func.count()).group_by(d.batch_id, d.rating))
        assert stored.all() == [(f"b{ROUNDS - 1}", ROUNDS, 2000)]
    assert {warehouse.batch_summary(engine, batch_id)["state"] for batch_id, _ in batches} == {BatchState.MERGED}
    assert warehouse.watermark(engine, "test") == datetime(2026, 11, 20 + ROUNDS - 1)
    assert list(folder.iterdir()) == []  # staged and scratch files are gone
    engine.dispose()
    print(
        f"\n{engine.dialect.name}: {writers.WRITERS} writers x {ROUNDS} merges of one batch at once in {seconds:.1f} s"
    )
