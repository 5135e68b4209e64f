"""The TTHC_RESULTS DAG run for real with `airflow dags test`: simulators as processes, SQLite everywhere."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import requests

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import parse_period
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.storage import ledger

PERIOD = parse_period("2026-10")


def _copies(env: demo.Environment) -> list[dict[str, object]]:
    response = requests.get(
        f"{env.central_url}/submissions",
        params={"report_type": "TTHC_RESULTS", "period": PERIOD.id},
        headers={"Authorization": f"Bearer {env.secrets_env[demo.CENTRAL_TOKEN_ENV]}"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json())


def test_the_dag_publishes_once_and_a_second_run_sends_nothing(tmp_path: Path) -> None:
    cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    with demo.environment(tmp_path / "work", volume=3000, fmt="json") as env:
        conf = {"config": str(env.config_path)}  # no period: the DAG derives it from the logical date
        assert demo.airflow_dags_test(env, "tthc_results", cut_off, conf) == 0, (
            env.workdir / "airflow-run.log"
        ).read_text()
        config = load_config(env.config_path)
        rows = ledger.listing(pipeline.engine_for(config), "TTHC_RESULTS", PERIOD.id)
        assert [(r["state"], r["format"]) for r in rows] == [(ledger.State.ACCEPTED, "json")]
        assert len(_copies(env)) == 1
        first_log = (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert "submission #1 accepted" in first_log

        assert demo.airflow_dags_test(env, "tthc_results", cut_off + timedelta(minutes=1), conf) == 0
        second_log = (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert "already accepted" in second_log and "nothing sent" in second_log
        assert len(_copies(env)) == 1
        assert ledger.get(pipeline.engine_for(config), rows[0]["id"]).attempts == 1


def test_a_fatal_error_fails_the_dag_without_retrying(tmp_path: Path) -> None:
    cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    with demo.environment(tmp_path / "work", volume=500) as env:
        env.secrets_env["real_token"] = env.secrets_env[demo.CENTRAL_TOKEN_ENV]
        env.secrets_env[demo.CENTRAL_TOKEN_ENV] = "not-the-registered-token"
        code = demo.airflow_dags_test(
            env, "tthc_results", cut_off, {"config": str(env.config_path), "period": PERIOD.id}
        )
        log = (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert code != 0
        assert "HTTP 401" in log and "AirflowFailException" in log
        # Failed at once: one failed task instance, none put up for retry.
        assert log.count("new_state=failed") == 1 and "up_for_retry" not in log
        env.secrets_env[demo.CENTRAL_TOKEN_ENV] = env.secrets_env["real_token"]
        assert _copies(env) == []


def test_the_correction_dag_sends_version_two_after_logging_its_diff(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from baocao.storage import warehouse

    cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    with demo.environment(tmp_path / "work", volume=1500, fmt="xml") as env:
        conf = {"config": str(env.config_path), "period": PERIOD.id}
        assert demo.airflow_dags_test(env, "tthc_results", cut_off, conf) == 0
        config = load_config(env.config_path)
        engine = warehouse.connect(config.warehouse_url)
        d = tables.dossiers.c
        with engine.begin() as connection:
            on_time = connection.execute(
                sa.select(d.code, d.due_at)
                .where(
                    d.status == "RESOLVED",
                    d.finished_at <= d.due_at,
                    d.finished_at >= datetime.combine(PERIOD.start, time(0)),
                    d.due_at < datetime.combine(PERIOD.end, time(0)),  # an hour late is still in the period
                )
                .limit(1)
            ).one()
            # The department's system corrects the finishing time: it was an hour past the deadline.
            connection.execute(
                sa.update(tables.dossiers)
                .where(d.code == on_time.code)
                .values(finished_at=on_time.due_at + timedelta(hours=1))
            )
        correction = {**conf, "report": "TTHC_RESULTS", "reason": "a finishing time corrected", "pull": False}
        assert demo.airflow_dags_test(env, "correct_report", cut_off + timedelta(hours=1), correction) == 0, (
            env.workdir / "airflow-run.log"
        ).read_text()[-5000:]
        log = "\n".join(p.read_text(encoding="utf-8") for p in (env.workdir / "airflow" / "logs").rglob("*.log"))
        log += (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert "against the accepted v1" in log and "resolved_late" in log
        rows = ledger.listing(pipeline.engine_for(config), "TTHC_RESULTS", PERIOD.id)
        assert [(r["version"], r["state"]) for r in rows] == [(1, "ACCEPTED"), (2, "ACCEPTED")]
        assert len(_copies(env)) == 2

        # Nothing changed since v2: the run fails and sends nothing.
        assert demo.airflow_dags_test(env, "correct_report", cut_off + timedelta(hours=2), correction) != 0
        assert "nothing changed" in (env.workdir / "airflow-run.log").read_text(encoding="utf-8")
        assert len(_copies(env)) == 2
