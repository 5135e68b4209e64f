"""TTHC_RESULTS (form II.06a): pull every source, validate, aggregate, check, render and publish.

Runs at the D09 cut-off: the 15th of each month at 02:00 Asia/Ho_Chi_Minh, for the month that
ended on the 14th. Params: `period` (a period id, to rerun or backfill) and `config` (path of the
configuration file; default $BAOCAO_CONFIG). Tasks pass references (batch ids, ledger ids) only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

REPORT = "TTHC_RESULTS"


@dag(
    dag_id="tthc_results",
    schedule=CronTriggerTimetable("0 2 15 * *", timezone="Asia/Ho_Chi_Minh"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    tags=["baocao", "TTHC_RESULTS"],
    params={
        "period": Param("", type="string", description="Period id (e.g. 2026-11); empty = last complete"),
        "config": Param("", type="string", description="Configuration file; empty = $BAOCAO_CONFIG"),
    },
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
)
def tthc_results() -> None:
    """II.06a report of dossiers received and resolved, by agency and field, for the central Government Office."""

    @task
    def choose_period() -> str:
        from baocao.tasks import config_from, period_for_run

        context = get_current_context()
        return period_for_run(config_from(context["params"]), REPORT, context["params"], context.get("logical_date"))

    @task
    def list_sources() -> list[str]:
        from baocao.tasks import config_from, run_step

        config = config_from(get_current_context()["params"])
        return list(run_step(config.report, REPORT).sources)

    @task
    def extract(source: str) -> str:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        return run_step(pipeline.extract, config_from(get_current_context()["params"]), source)

    @task
    def validate(batch_id: str) -> dict[str, Any]:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        return run_step(pipeline.validate_batch, config_from(get_current_context()["params"]), batch_id)

    @task
    def aggregate(period: str, batches: list[dict[str, Any]]) -> str:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        run_step(pipeline.aggregate, config_from(get_current_context()["params"]), REPORT, period)
        return period

    @task
    def validate_report(period: str) -> str:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        run_step(pipeline.validate_report, config_from(get_current_context()["params"]), REPORT, period)
        return period

    @task
    def render(period: str) -> int:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        rendered = run_step(pipeline.render, config_from(get_current_context()["params"]), REPORT, period)
        assert rendered.submission is not None
        return rendered.submission.id

    @task
    def publish(submission: int) -> dict[str, Any]:
        from baocao import pipeline
        from baocao.tasks import config_from, run_step

        return run_step(pipeline.publish, config_from(get_current_context()["params"]), submission)

    period = choose_period()
    validated = validate.expand(batch_id=extract.expand(source=list_sources()))
    publish(render(validate_report(aggregate(period, validated))))  # type: ignore[arg-type]


tthc_results()
