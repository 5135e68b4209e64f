"""Two workers race (issue #4, part 5): two real processes render and publish the same report and
period at the same instant, again and again, on the SQLite warehouse file and on PostgreSQL.

The sandbox holds each new submission for `processing_delay`, so the second POST arrives while
the first is still being processed (REQUEST_IN_PROGRESS) and the window for a double send is wide
open. Every round must end with one ledger row, one copy at the central and the same receipt in
both processes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from baocao.run import pipeline
from baocao.storage import ledger
from tests.delivery import workers
from tests.delivery.conftest import Spawner
from tests.delivery.support import REPORT, SECRETS_ENV, World, copy_report_rows, make_world, months

ROUNDS = 20


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_url: str) -> Iterator[World]:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    yield from make_world(
        tmp_path,
        sandbox_settings={"processing_delay": 0.3},
        warehouse_url=warehouse_url,
        max_attempts=4,
        backoff_base_seconds=0.05,
        backoff_max_seconds=0.3,
    )


@pytest.mark.slow
def test_two_workers_render_and_publish_the_same_period_at_once(world: World, spawner: Spawner) -> None:
    periods = months(date(2027, 1, 1), ROUNDS)
    copy_report_rows(world.config, periods)
    config_path = str(world.config_path)
    engine = pipeline.engine_for(world.config)
    tally: Counter[str] = Counter()
    started = time.monotonic()
    for period in periods:
        start_at = time.time() + 0.3  # both wait for this instant, already forked and configured
        racers = [
            spawner.start(workers.render_and_publish_child, config_path, SECRETS_ENV, REPORT, period, start_at)
            for _ in range(2)
        ]
        codes = [racer.wait() for racer in racers]
        assert codes == [0, 0], [racer.result() for racer in racers]
        results = [racer.result() for racer in racers]
        receipts = {result["receipt"]["receipt_id"] for result in results}
        rows = ledger.listing(engine, REPORT, period)
        copies = [receipt for receipt in world.sandbox.receipts() if receipt["period_id"] == period]
        posts = world.sandbox.posts(rows[0]["idempotency_key"])
        tally["rounds"] += 1
        tally["one ledger row"] += len(rows) == 1
        tally["one copy at the sandbox"] += len(copies) == 1
        tally["same receipt in both"] += len(receipts) == 1 and receipts == {copies[0]["receipt_id"]}
        tally["both rendered (freeze raced)"] += not any(result["found_frozen"] for result in results)
        tally["second POST got REQUEST_IN_PROGRESS"] += any(post.status == 409 for post in posts)
        tally["POSTs"] += len(posts)
        assert len(rows) == 1 and rows[0]["state"] == ledger.State.ACCEPTED, rows
        assert len(copies) == 1 and receipts == {copies[0]["receipt_id"]} == {rows[0]["receipt_id"]}
    elapsed = time.monotonic() - started
    dialect = engine.dialect.name
    figures = ", ".join(f"{name} {count}" for name, count in tally.items())
    print(f"\n{ROUNDS} races ({dialect} warehouse), {elapsed:.1f} s: {figures}")
    assert len(world.sandbox.receipts()) == ROUNDS
    assert ROUNDS == tally["one ledger row"] == tally["one copy at the sandbox"] == tally["same receipt in both"]
