"""Publisher processes for the delivery tests, started from a forkserver that has already imported
`baocao.pipeline` (importing it takes ~15 s of CPU here; a fork from the warmed server takes a few
milliseconds). Each child is a separate OS process with its own database connections and sockets,
so SIGKILL hits it exactly as it would hit `baocao run`: no cleanup, nothing flushed.

Each child writes what it got to a JSON file (written under a temporary name and renamed, so a
killed child leaves no half-written result) and exits 0 (done), 75 (retriable) or 1 (fatal).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.context
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from baocao.core.errors import BaocaoError, RetriableError
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.run.faults import CRASH_AT_ENV
from baocao.storage import ledger


def noop() -> None:
    """Starts the forkserver (and its imports) once, outside any timed section."""


def _environment(env: Mapping[str, str], crash_at: str | None) -> None:
    os.environ.update(env)
    if crash_at:
        os.environ[CRASH_AT_ENV] = crash_at
    else:
        os.environ.pop(CRASH_AT_ENV, None)


def _write(result_path: str, result: Mapping[str, Any]) -> None:
    temporary = Path(result_path + ".tmp")
    temporary.write_text(json.dumps(result, ensure_ascii=False, default=str), encoding="utf-8")
    temporary.rename(result_path)


def _finish(result_path: str, started: float, work: Any) -> None:
    try:
        result = work()
    except RetriableError as error:
        _write(result_path, {"error": str(error), "kind": "retriable", "seconds": time.monotonic() - started})
        sys.exit(75)
    except BaocaoError as error:
        _write(result_path, {"error": str(error), "kind": "fatal", "seconds": time.monotonic() - started})
        sys.exit(1)
    _write(result_path, {**result, "seconds": time.monotonic() - started})


def publish_child(config_path: str, env: Mapping[str, str], number: int, crash_at: str | None, result: str) -> None:
    """`pipeline.publish` of one ledger submission, as the publish task runs it."""
    started = time.monotonic()
    _environment(env, crash_at)
    _finish(result, started, lambda: {"receipt": pipeline.publish(load_config(config_path), number)})


def publish_pending_child(config_path: str, env: Mapping[str, str], result: str) -> None:
    """`pipeline.publish_pending`: the backlog drain behind `baocao publish --pending`."""
    started = time.monotonic()
    _environment(env, None)
    _finish(result, started, lambda: {"receipts": pipeline.publish_pending(load_config(config_path))})


def render_and_publish_child(
    config_path: str, env: Mapping[str, str], report: str, period: str, start_at: float, result: str
) -> None:
    """A whole render → publish of one report and period, started at the wall-clock instant `start_at`
    (both racing workers wait for the same instant: a barrier without shared memory)."""
    started = time.monotonic()
    _environment(env, None)

    def work() -> dict[str, Any]:
        config = load_config(config_path)
        engine = pipeline.engine_for(config)
        slot = ledger.live_slot(config.province_code, report, period, config.report(report).regime.value, 1)
        time.sleep(max(0.0, start_at - time.time()))
        found_frozen = ledger.find_live(engine, slot) is not None  # False: this worker renders too
        rendered = pipeline.render(config, report, period)
        assert rendered.submission is not None
        receipt = pipeline.publish(config, rendered.submission.id)
        return {"receipt": receipt, "submission": rendered.submission.id, "found_frozen": found_frozen}

    _finish(result, started, work)


def forkserver() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, with the pipeline imported once in the server.

    A child re-runs the parent's main script (multiprocessing's "safe importing of main"): under
    pytest that script imports pytest, so pytest is preloaded too, or each child would pay for it.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["baocao.run.pipeline", "tests.delivery.workers", "pytest"])
    return context
