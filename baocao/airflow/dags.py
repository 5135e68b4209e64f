"""One report's DAG: choose the period, pull every source, check, render, publish.

Imported only by the files in dags/ (the core never imports Airflow). Each task's body is a call to
a pipeline step through `baocao.tasks.run_step`; tasks pass references (batch ids, period ids,
ledger ids), never data.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

TIMEZONE = "Asia/Ho_Chi_Minh"


def report_dag(report: str, cron: str, description: str, retry_delay: timedelta = timedelta(minutes=2)) -> DAG:
    """The DAG of `report`, triggered by `cron` in local time (the report's period cut-off)."""

    @dag(
        dag_id=report.lower(),
        description=description,
        schedule=CronTriggerTimetable(cron, timezone=TIMEZONE),
        start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=["baocao", report],
        params={
            "period": Param("", type="string", description="Period id to run (rerun, backfill); empty = last complete"),
            "config": Param("", type="string", description="Configuration file; empty = $BAOCAO_CONFIG"),
        },
        default_args={
            "retries": 3,
            "retry_delay": retry_delay,
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
        },
        doc_md=description,
    )
    def build() -> None:
        @task
        def choose_period() -> str:
            from baocao.airflow.tasks import checked_config_from, period_for_run

            context = get_current_context()
            return period_for_run(
                checked_config_from(context["params"]), report, context["params"], context.get("logical_date")
            )

        @task
        def list_sources() -> list[str]:
            from baocao.airflow.tasks import config_from, run_step

            config = config_from(get_current_context()["params"])
            return list(run_step(config.report, report).sources)

        @task
        def extract(source: str, period: str) -> str:
            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            return run_step(pipeline.extract, config_from(get_current_context()["params"]), source, None, period)

        @task
        def validate(batch_id: str) -> dict[str, Any]:
            import dataclasses

            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            outcome = run_step(pipeline.validate_batch, config_from(get_current_context()["params"]), batch_id)
            return dataclasses.asdict(outcome)  # XCom: the counts and rules, a reference-sized summary

        @task
        def aggregate(period: str, batches: list[dict[str, Any]]) -> str:
            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            run_step(pipeline.aggregate, config_from(get_current_context()["params"]), report, period)
            return period

        @task
        def validate_report(period: str) -> str:
            """The stored report's version the suite approved (its content hash): render sends that one."""
            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            params = get_current_context()["params"]
            return run_step(pipeline.validate_report, config_from(params), report, period).content_hash

        @task
        def render(period: str, content_hash: str) -> int:
            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            config = config_from(get_current_context()["params"])
            rendered = run_step(pipeline.render, config, report, period, False, content_hash)
            assert rendered.submission is not None
            return rendered.submission.id

        @task
        def publish(submission: int) -> dict[str, Any]:
            from baocao.airflow.tasks import config_from, run_step
            from baocao.run import pipeline

            config = config_from(get_current_context()["params"])
            receipt = run_step(pipeline.publish, config, submission)
            # Earlier periods an outage left frozen (past this task's retries) go out with this one.
            run_step(pipeline.publish_pending, config, report)
            return receipt

        period = choose_period()
        validated = validate.expand(batch_id=extract.partial(period=period).expand(source=list_sources()))
        publish(render(period, validate_report(aggregate(period, validated))))  # type: ignore[arg-type]

    return build()


def correction_dag() -> DAG:
    """The manual DAG that sends version n+1 of an accepted report (`pipeline.correct`)."""

    @dag(
        dag_id="correct_report",
        description="Correct an accepted report: version n+1 superseding its receipt, diff in the log first.",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=["baocao", "correction"],
        params={
            "report": Param("TTHC_RESULTS", type="string", description="Report type"),
            "period": Param("", type="string", description="Period id of the accepted report"),
            "reason": Param("", type="string", description="Why the accepted version is wrong (CorrectionReason)"),
            "dry_run": Param(False, type="boolean", description="Show the diff only; nothing is frozen or sent"),
            "pull": Param(True, type="boolean", description="Pull the sources again before aggregating"),
            "config": Param("", type="string", description="Configuration file; empty = $BAOCAO_CONFIG"),
        },
        default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    )
    def build() -> None:
        @task
        def correct() -> dict[str, Any]:
            import functools
            import logging

            from baocao.airflow.tasks import checked_config_from, run_step
            from baocao.run import pipeline
            from baocao.transforms import diff

            params = get_current_context()["params"]
            log = logging.getLogger("baocao.correction")

            def show(base: Any, changes: list[diff.Change]) -> None:
                log.info(
                    "v%d against the accepted v%d (receipt %s): %d cell(s) changed, old → new\n%s",
                    base.version + 1,
                    base.version,
                    base.receipt_id,
                    len(changes),
                    diff.describe(changes),
                )

            step = functools.partial(
                pipeline.correct, dry_run=bool(params["dry_run"]), show=show, pull=bool(params["pull"])
            )
            result = run_step(step, checked_config_from(params), params["report"], params["period"], params["reason"])
            return {"payload": str(result.rendered.path), "changes": len(result.changes), "receipt": result.receipt}

        correct()

    return build()
