"""Writer processes for the concurrency tests: each is a separate OS process (forked from a server that
shares nothing with the test but the arguments) that connects on its own, meets the other writer at a barrier, then
replaces the same thing at the same moment, round after round. What each round returned, or the
traceback that stopped it, goes back through a queue."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from baocao.core import tables
from baocao.storage import warehouse

# How long a writer waits for the other at the barrier: the spawned interpreter imports pandas and
# pyarrow first, which takes a few seconds on a loaded machine.
BARRIER_TIMEOUT = 120


def ready() -> None:
    """Starts the forkserver (and its imports) once, outside any timed section."""


def _rounds(url: str, barrier: Any, results: Any, name: str, rounds: int, write: Callable[[Engine, int], Any]) -> None:
    try:
        engine = warehouse.connect(url)
        for number in range(rounds):
            barrier.wait(BARRIER_TIMEOUT)
            results.put((name, number, write(engine, number)))
        engine.dispose()
    except BaseException:
        results.put((name, None, traceback.format_exc()))
        barrier.abort()  # the other writer stops waiting for this one
        raise


def replace_catalogue(
    url: str, barrier: Any, results: Any, name: str, source: str, catalogues: Sequence[Sequence[Mapping[str, Any]]]
) -> None:
    """Round n: store `catalogues[n]` as `source`'s catalogue, as two extracts of one catalogue do."""

    def write(engine: Engine, number: int) -> int:
        return warehouse.replace_procedures(engine, source, f"{name}-{number}", catalogues[number])

    _rounds(url, barrier, results, name, len(catalogues), write)


def replace_report(
    url: str, barrier: Any, results: Any, name: str, period_id: str, regime: str, reports: Sequence[Sequence[Any]]
) -> None:
    """Round n: store `reports[n]` as the period's TTHC rows, as two aggregations of one period do."""

    def write(engine: Engine, number: int) -> int:
        warehouse.replace_report_rows(engine, tables.report_tthc_rows, period_id, regime, reports[number])
        return len(reports[number])

    _rounds(url, barrier, results, name, len(reports), write)


def merge(url: str, barrier: Any, results: Any, name: str, batches: Sequence[tuple[str, str]]) -> None:
    """Round n: merge the staged batch `batches[n]` (id, file), as a retried merge task next to the first."""

    def write(engine: Engine, number: int) -> int:
        batch_id, staged_file = batches[number]
        return warehouse.merge_batch(engine, batch_id, Path(staged_file))

    _rounds(url, barrier, results, name, len(batches), write)
