"""DAG files parse quickly, without touching the network or a database, and wire the expected tasks."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_tthc_dag_wires_the_six_steps_without_io_at_parse_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DAG parsing opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("BAOCAO_CONFIG", raising=False)
    monkeypatch.syspath_prepend(str(DAGS))
    sys.modules.pop("tthc_results", None)
    import tthc_results  # noqa: PLC0415

    dag = tthc_results.tthc_results()
    assert dag.dag_id == "tthc_results"
    assert set(dag.task_ids) == {
        "choose_period",
        "list_sources",
        "extract",
        "validate",
        "aggregate",
        "validate_report",
        "render",
        "publish",
    }
    assert dag.get_task("publish").upstream_task_ids == {"render"}
    assert dag.get_task("aggregate").upstream_task_ids == {"choose_period", "validate"}
    assert str(dag.timetable.summary) == "0 2 15 * *"
    assert "pandas" not in dir(tthc_results)
