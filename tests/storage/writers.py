"""Writer processes for the storage tests, and `run_together`, which starts two of them at once.

Each writer is a separate OS process (forked from a server that shares nothing with the test but the
arguments) that meets the other writer at a barrier, then connects or writes at the same moment, round
after round. What each round returned, or the traceback that stopped it, goes back through a queue.
"""

from __future__ import annotations

import multiprocessing.context
import queue
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from baocao.core.report import Report
from baocao.storage import migrations, warehouse
from baocao.storage import reports as stored_reports

WRITERS = 2
# How long a writer waits for the other at the barrier, and the test for both.
BARRIER_TIMEOUT = 120
RUN_TIMEOUT = 240


def ready() -> None:
    """Starts the forkserver (and its imports) once, outside any timed section."""


def run_together(
    context: multiprocessing.context.BaseContext, target: Callable[..., None], url: str, rounds: int, *args: Any
) -> dict[str, list[Any]]:
    """Run `target` in two processes at once; what each returned, round by round, by writer name.
    Fails with the writers' tracebacks if either raised."""
    barrier = context.Barrier(WRITERS)
    results = context.Queue()
    names = [f"writer-{number}" for number in range(WRITERS)]
    processes = [context.Process(target=target, args=(url, barrier, results, name, *args)) for name in names]
    for process in processes:
        process.start()
    returned: dict[str, list[Any]] = {name: [] for name in names}
    failures: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while sum(len(values) for values in returned.values()) + len(failures) < WRITERS * rounds:
            if len(failures) == WRITERS:
                break
            try:
                name, number, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"writers still running after {RUN_TIMEOUT} s: {returned}") from None
            if number is None:
                failures.append(f"{name}:\n{value}")
            else:
                returned[name].append(value)
    finally:
        for process in processes:
            process.join(30)
            if process.exitcode is None:
                process.kill()
    assert not failures, "\n".join(failures)
    assert [process.exitcode for process in processes] == [0] * WRITERS
    return returned


def _reported(barrier: Any, results: Any, name: str, work: Callable[[], None]) -> None:
    try:
        work()
    except BaseException:
        results.put((name, None, traceback.format_exc()))
        barrier.abort()  # the other writer stops waiting for this one
        raise


def _rounds(url: str, barrier: Any, results: Any, name: str, rounds: int, write: Callable[[Engine, int], Any]) -> None:
    def work() -> None:
        engine = warehouse.connect(url)
        for number in range(rounds):
            barrier.wait(BARRIER_TIMEOUT)
            results.put((name, number, write(engine, number)))
        engine.dispose()

    _reported(barrier, results, name, work)


def connect(url: str, barrier: Any, results: Any, name: str) -> None:
    """Connect at the same moment as the other writer (workers starting together): the revision found."""

    def work() -> None:
        barrier.wait(BARRIER_TIMEOUT)
        engine = warehouse.connect(url)
        results.put((name, 0, migrations.current(engine)))
        engine.dispose()

    _reported(barrier, results, name, work)


def replace_catalogue(
    url: str, barrier: Any, results: Any, name: str, source: str, catalogues: Sequence[Sequence[Mapping[str, Any]]]
) -> None:
    """Round n: store `catalogues[n]` as `source`'s catalogue, as two extracts of one catalogue do."""

    def write(engine: Engine, number: int) -> int:
        return warehouse.replace_procedures(engine, source, f"{name}-{number}", catalogues[number])

    _rounds(url, barrier, results, name, len(catalogues), write)


def store_report(url: str, barrier: Any, results: Any, name: str, reports: Sequence[Report]) -> None:
    """Round n: store `reports[n]` as its period's current version, as two aggregations of one period do."""

    def write(engine: Engine, number: int) -> str:
        return stored_reports.store(engine, reports[number], {"writer": name}, warehouse.utc_now())

    _rounds(url, barrier, results, name, len(reports), write)


def merge(url: str, barrier: Any, results: Any, name: str, batches: Sequence[tuple[str, str]]) -> None:
    """Round n: merge the staged batch `batches[n]` (id, file), as a retried merge task next to the first."""

    def write(engine: Engine, number: int) -> int:
        batch_id, staged_file = batches[number]
        return warehouse.merge_batch(engine, batch_id, Path(staged_file))

    _rounds(url, barrier, results, name, len(batches), write)
