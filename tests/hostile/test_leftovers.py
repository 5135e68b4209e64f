"""Nothing left behind (issue 13, item 5): a real `baocao run` SIGKILLed just after staging its batch
(`BAOCAO_CRASH_AT=after_stage`, baocao/run/faults.py) leaves the batch STAGED with its staged file;
orphan files lie in the staging folder beside it. `baocao status` shows them and what the next run will
do (and, while a run of the period holds its lock, that run: a second one ends retriable); the next
run merges the stuck batch (its file is whole), removes the orphans, leaves alone the file a
live process holds, and publishes. A stuck batch whose staged file does not read is retired (ABANDONED,
its file removed) and its window pulled again.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.core import file_locks, tables
from baocao.run.config import load_config
from baocao.run.faults import AFTER_STAGE, CRASH_AT_ENV
from baocao.storage import warehouse
from tests.delivery.support import PullingWorld, pulling_world
from tests.hostile.support import one_line_failure

pytestmark = [pytest.mark.hostile, pytest.mark.slow]

REPORT = "TTHC_RESULTS"
PERIOD = "2026-10"
HOURS_AGO = time.time() - 2 * 3600


def _baocao(
    *arguments: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`baocao ...` in its own process, with the pulling world's secrets (they are in this process's environment)."""
    command = [str(Path(sys.executable).with_name("baocao")), *arguments]
    environment = {**os.environ, "COLUMNS": "500", **(env or {})}
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        command, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def world(tmp_path: Path, warehouse_url: str) -> Iterator[PullingWorld]:
    with pulling_world(tmp_path, volume=600, warehouse_url=warehouse_url) as found:
        yield found


def _batches(world: PullingWorld) -> dict[str, str]:
    engine = warehouse.connect(load_config(world.config_path).warehouse_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(tables.batches.c.batch_id, tables.batches.c.state))
            return {row.batch_id: row.state for row in rows}
    finally:
        engine.dispose()


def _run(world: PullingWorld, crash: bool = False) -> subprocess.CompletedProcess[str]:
    arguments = ("run", "--report", REPORT, "--period", PERIOD, "--config", str(world.config_path))
    return _baocao(*arguments, env={CRASH_AT_ENV: AFTER_STAGE} if crash else None)


def _status(world: PullingWorld) -> str:
    result = _baocao("status", "--config", str(world.config_path))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout


def _killed_after_staging(world: PullingWorld) -> str:
    """Run until just after staging, SIGKILLed there; the stuck batch's id."""
    before = _batches(world)
    killed = _run(world, crash=True)
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL: no cleanup ran
    stuck = {batch: state for batch, state in _batches(world).items() if batch not in before}
    assert list(stuck.values()) == ["STAGED"], stuck
    return next(iter(stuck))


def test_a_run_killed_after_staging_is_taken_up_by_the_next(world: PullingWorld) -> None:
    staging = world.config_path.parent / "var" / "staging"
    stuck = _killed_after_staging(world)
    staged_file = staging / f"{stuck}.parquet"
    assert staged_file.exists()

    # Orphans: a dead writer's .partial file, a staged file no batch row names, and a .partial file this
    # (live) process holds, as a writer does while it writes.
    dead_partial = staging / f".{stuck[:-9]}-0badf00d.parquet.{'a' * 32}.partial"
    ghost = staging / "ghost-20260101T000000-00000000.parquet"
    held_partial = staging / f".{stuck[:-9]}-1badf00d.parquet.{'b' * 32}.partial"
    for orphan in (dead_partial, ghost, held_partial):
        orphan.write_bytes(b"PAR1 not a whole file")
        os.utime(orphan, (HOURS_AGO, HOURS_AGO))
    holder = os.open(held_partial, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)

        # While a run of the period is in progress (this process holds its lock), status says so and
        # another run ends retriable, naming it.
        with file_locks.held(world.config_path.parent / "var" / "locks" / f"run-{REPORT}-{PERIOD}.lock", note=True):
            shown = _status(world)
            assert f"run in progress: {REPORT} {PERIOD} (pid {os.getpid()}, since " in shown, shown
            line = one_line_failure(_run(world), "retriable")
            assert f"another run of {REPORT} {PERIOD} is in progress (pid {os.getpid()}, since " in line, line
        assert _batches(world)[stuck] == "STAGED"  # the refused run touched nothing
        assert "1 stuck batch(es), 3 orphan staging file(s)" in shown, shown
        rows = {line.split("│")[2].strip(): line for line in shown.splitlines() if line.count("│") >= 6}
        assert "merge" in rows[stuck] and "stuck batch (STAGED)" in rows[stuck], shown
        assert "remove" in rows[dead_partial.name] and "remove" in rows[ghost.name], shown
        assert "leave" in rows[held_partial.name] and "a live process holds it" in rows[held_partial.name], shown

        result = _run(world)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    finally:
        os.close(holder)

    states = _batches(world)
    assert states[stuck] == "MERGED"  # taken up: validated and merged before the next pull
    assert sorted(states.values()) == ["MERGED", "MERGED"]  # and the run's own batch
    assert not staged_file.exists() and not dead_partial.exists() and not ghost.exists()
    assert held_partial.exists()  # its holder was alive: left alone
    assert len([r for r in world.sandbox.receipts() if r["period_id"] == PERIOD]) == 1

    # Held no more: the next status offers to remove it, the next run does.
    assert "remove" in _status(world)
    # A stuck batch whose staged file does not read is retired, its file removed, its window pulled again.
    broken = _killed_after_staging(world)
    (staging / f"{broken}.parquet").write_bytes(b"PAR1 cut short")
    shown = _status(world)
    assert broken in shown and "retire" in shown and "does not read" in shown, shown
    again = _run(world)
    assert again.returncode == 0, again.stderr[-3000:]
    states = _batches(world)
    assert states[broken] == "ABANDONED"
    assert sorted(states.values()).count("MERGED") == 3
    assert list(staging.iterdir()) == []  # nothing left behind
    assert "Leftovers: no stuck batch, no orphan staging file" in _status(world)
    assert len([r for r in world.sandbox.receipts() if r["period_id"] == PERIOD]) == 1
