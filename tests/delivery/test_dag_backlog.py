"""The DAG picks up frozen submissions (issue #4, part 4a): months an outage of the central left
FROZEN (past their own runs' retries) go out with the next DAG run's publish task, once each,
through the real DAG (`airflow dags test`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import RetriableError
from baocao.core.periods import parse_period
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.storage import ledger
from tests.delivery.support import REPORT, ledger_rows, pulling_world

BACKLOG = ("2026-08", "2026-09")
PERIOD = parse_period("2026-10")


@pytest.mark.slow
def test_the_next_dag_run_publishes_the_backlog_an_outage_left(tmp_path: Path) -> None:
    with pulling_world(tmp_path) as world:
        config = load_config(world.config_path)
        world.sandbox.stop()  # the outage
        for period in BACKLOG:  # each month's run got as far as the freeze; its publish found nobody
            pipeline.validate_batch(config, pipeline.extract(config, "onestop", period_id=period))
            pipeline.aggregate(config, REPORT, period)
            pipeline.validate_report(config, REPORT, period)
            rendered = pipeline.render(config, REPORT, period)
            assert rendered.submission is not None
            with pytest.raises(RetriableError, match="ConnectionError"):
                pipeline.publish(config, rendered.submission.id)
        frozen = {row.period_id: row for row in ledger_rows(config)}
        assert [row.state for row in frozen.values()] == [ledger.State.FROZEN] * 2
        world.sandbox.start()  # back

        cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
        code = demo.airflow_dags_test(world.env, "tthc_results", cut_off, {"config": str(world.config_path)})
        log = (world.env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert code == 0, log[-3000:]

        receipts = world.sandbox.receipts()
        rows = {row.period_id: row for row in ledger_rows(config)}
        posts = world.sandbox.posts()
        print(
            f"\nbacklog {list(BACKLOG)} FROZEN by the outage; the DAG run for {PERIOD.id}: exit {code}, "
            f"at the sandbox {sorted(r['period_id'] for r in receipts)} ({len(posts)} POSTs), ledger "
            f"{ {period: row.state for period, row in rows.items()} }"
        )
        assert sorted(r["period_id"] for r in receipts) == [*BACKLOG, PERIOD.id]
        assert len(posts) == 3 and all(p.status == 201 and not p.replayed for p in posts)
        assert all(row.state == ledger.State.ACCEPTED for row in rows.values())
        for period in BACKLOG:  # the frozen bytes and key went out, not a fresh rendering
            assert (rows[period].idempotency_key, rows[period].sha256) == (
                frozen[period].idempotency_key,
                frozen[period].sha256,
            )
        assert "backlog: 2 of 2 frozen submission(s) accepted" in log
