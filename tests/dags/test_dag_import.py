"""DAG files parse quickly through Airflow's DagBag, without network or database access at parse time."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
STEPS = {"choose_period", "list_sources", "extract", "validate", "aggregate", "validate_report", "render", "publish"}
SCHEDULES = {
    "tthc_results": "0 2 15 * *",
    "online_services": "0 3 15 * *",
    "ict_ranking": "0 2 15 1 *",
    "egov_maturity": "0 3 15 1 *",
    "service_index": "0 4 5 1,4,7,10 *",
}


def test_every_report_has_a_dag_on_its_own_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DAG parsing opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("BAOCAO_CONFIG", raising=False)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    ours = {dag_id for dag_id, dag in bag.dags.items() if Path(dag.fileloc).parent == DAGS}
    assert ours == {*SCHEDULES, "correct_report"}
    correction = bag.dags["correct_report"]
    assert type(correction.timetable).__name__ == "NullTimetable"  # triggered by an operator only
    assert set(correction.task_ids) == {"correct"}
    assert {"report", "period", "reason", "dry_run", "pull", "config"} <= set(correction.params)
    for dag_id, cron in SCHEDULES.items():
        dag = bag.dags.get(dag_id)
        assert dag is not None
        assert set(dag.task_ids) == STEPS
        assert dag.get_task("publish").upstream_task_ids == {"render"}
        assert dag.get_task("aggregate").upstream_task_ids == {"choose_period", "validate"}
        assert str(dag.timetable.summary) == cron
        assert dag.timetable._timezone.name == "Asia/Ho_Chi_Minh"  # noqa: SLF001
