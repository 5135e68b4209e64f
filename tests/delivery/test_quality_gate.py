"""The data-quality gate (issue #4, part 8): when a report-level rule fails, nothing reaches the
central — counted at the sandbox itself — and the run fails with the rule, the row and both values.

The fault: a trigger in the warehouse file corrupts the first report row aggregate stores for a
period (resolved_late + 1), as a faulty aggregation or a hand edit of the table would; the
identity resolved_total = resolved_early + resolved_on_time + resolved_late of DOMAIN.md breaks.
The run goes through the real `baocao run` and through the real DAG (`airflow dags test`), pulling
from the one-stop-shop simulator, with the sandbox on loopback logging every request it receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import parse_period
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.storage import ledger, warehouse
from tests.delivery.support import PullingWorld, pulling_world, run_cli
from tests.report_storage import current_lines

PERIOD = parse_period("2026-10")
RULE = "resolved_total = resolved_early + resolved_on_time + resolved_late"
# An aggregation that gets one figure wrong: the first agency row the stored report gets counts one
# late dossier too many (the stored lines are JSON objects, `baocao.storage.reports`).
TAMPER = """
CREATE TRIGGER tamper_first_report_row AFTER INSERT ON report_lines
WHEN json_extract(NEW.data, '$.kind') = 'ROW'
 AND (SELECT count(*) FROM report_lines
      WHERE version_id = NEW.version_id AND json_extract(data, '$.kind') = 'ROW') = 1
BEGIN
    UPDATE report_lines SET data = json_set(data, '$.resolved_late', json_extract(data, '$.resolved_late') + 1)
    WHERE version_id = NEW.version_id AND table_name = NEW.table_name AND line = NEW.line;
END
"""


@dataclass
class Gate:
    world: PullingWorld

    @property
    def config_path(self) -> Path:
        return self.world.config_path

    def tampered_row(self) -> dict[str, Any]:
        engine = warehouse.connect(load_config(self.config_path).warehouse_url)
        rows = [line for line in current_lines(engine, "TTHC_RESULTS", PERIOD.id) if line["kind"] == "ROW"]
        broken = [
            r for r in rows if r["resolved_total"] != r["resolved_early"] + r["resolved_on_time"] + r["resolved_late"]
        ]
        assert len(broken) == 1 and len(rows) > 1, "the trigger corrupts exactly one row"
        return broken[0]

    def assert_nothing_sent(self) -> None:
        sandbox = self.world.sandbox
        assert self.world.requests_at_sandbox() == []  # not one request, let alone a POST
        assert sandbox.receipts() == [] and sandbox.stored_bodies() == 0
        engine = warehouse.connect(load_config(self.config_path).warehouse_url)
        assert ledger.listing(engine) == []  # nothing was even frozen


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    with pulling_world(tmp_path) as world:
        engine = warehouse.connect(load_config(world.config_path).warehouse_url)
        with engine.begin() as connection:
            connection.exec_driver_sql(TAMPER)
        yield Gate(world)


def _assert_names_rule_row_and_values(message: str, row: dict[str, Any]) -> None:
    label = f"{row['level']}/{row['agency']}/{row['field']}"
    parts = row["resolved_early"] + row["resolved_on_time"] + row["resolved_late"]
    assert RULE in message
    assert label in message
    assert f"resolved_total={row['resolved_total']}" in message and f"resolved_parts={parts}" in message


def test_baocao_run_stops_at_the_failed_rule_and_sends_nothing(gate: Gate) -> None:
    result = run_cli(
        "run", "--report", "TTHC_RESULTS", "--period", PERIOD.id, "--config", str(gate.config_path),
        env=gate.world.env.secrets_env,
    )  # fmt: skip
    row = gate.tampered_row()
    error = next(line for line in result.stderr.splitlines() if "failed check(s)" in line)
    print(f"\n`baocao run` exit {result.returncode}; {error.strip()}")
    sandbox = gate.world.sandbox
    print(
        f"sandbox: {len(gate.world.requests_at_sandbox())} requests, {len(sandbox.posts())} POSTs, "
        f"{len(sandbox.receipts())} submissions"
    )
    assert result.returncode == 65, result.stderr
    _assert_names_rule_row_and_values(result.stderr, row)
    gate.assert_nothing_sent()


@pytest.mark.slow
def test_the_dag_stops_at_the_failed_rule_and_sends_nothing(gate: Gate) -> None:
    cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    code = demo.airflow_dags_test(
        gate.world.env, "tthc_results", cut_off, {"config": str(gate.config_path), "period": PERIOD.id}
    )
    log = (gate.world.env.workdir / "airflow-run.log").read_text(encoding="utf-8")
    row = gate.tampered_row()
    failed = [line for line in log.splitlines() if "AirflowFailException" in line and RULE in line]
    sandbox = gate.world.sandbox
    print(
        f"\n`airflow dags test` exit {code}; validate_report failed at once: {bool(failed)}; "
        f"sandbox: {len(gate.world.requests_at_sandbox())} requests, {len(sandbox.posts())} POSTs"
    )
    assert code != 0
    assert failed, log[-3000:]
    _assert_names_rule_row_and_values(failed[0], row)
    assert "up_for_retry" not in log  # a data-quality failure is not retried
    gate.assert_nothing_sent()
