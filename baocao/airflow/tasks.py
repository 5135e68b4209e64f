"""Thin adapters between the pipeline steps and Airflow tasks (the only place that knows Airflow).

Retriable errors propagate, so Airflow's retries (with backoff) handle them; fatal and
data-quality errors become AirflowFailException, which fails the task at once without retrying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import DataQualityError, FatalError
from baocao.core.periods import last_complete_period, parse_period
from baocao.core.settings import Config
from baocao.run.config import check_config, load_config
from baocao.storage import warehouse

T = TypeVar("T")


def run_step(step: Callable[..., T], *args: Any) -> T:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return step(*args)
    except (FatalError, DataQualityError) as error:
        raise AirflowFailException(str(error)) from error
    except sa.exc.DBAPIError as error:
        # A warehouse gone mid-step: retried by Airflow like any retriable error, logged as one line.
        gone = warehouse.outage(error)
        if gone is None:
            raise
        raise gone from None


def config_from(params: Mapping[str, Any]) -> Config:
    return run_step(load_config, params.get("config") or None)


def checked_config_from(params: Mapping[str, Any]) -> Config:
    """The configuration read and checked completely (`run.config.check_config`): the DAG's first task
    calls this, so a bad configuration fails it with one line before anything is pulled."""
    config = config_from(params)
    run_step(check_config, config)
    return config


def period_for_run(config: Config, report_type: str, params: Mapping[str, Any], logical_date: datetime | None) -> str:
    """The period given as a parameter, else the last one complete at the run's logical date (local)."""
    settings = run_step(config.report, report_type)
    if params.get("period"):
        return run_step(parse_period, str(params["period"]), settings.regime).id
    moment = logical_date or datetime.now(LOCAL_TIMEZONE)
    local_day = moment.astimezone(LOCAL_TIMEZONE).date() if moment.tzinfo else moment.date()
    return last_complete_period(settings.period_type, settings.regime, local_day).id
