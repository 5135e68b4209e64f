"""Concurrent runs (issue 13, item 3): two real `baocao run` processes of the same report and period,
started at the same instant against one central sandbox, on the SQLite warehouse file and on
PostgreSQL. One publishes; the other ends retriable (75) with one line naming the run in progress, or
finds the version already accepted. Never a traceback (the probe saw Great Expectations die on its
shared files in 3 of 6 trials), never two accepted versions. Two runs of different periods at once
both publish: they take turns only on the source's extract and on GX's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery.support import PullingWorld, pulling_world
from tests.hostile.support import one_line_failure

pytestmark = [pytest.mark.hostile, pytest.mark.slow]

REPORT = "TTHC_RESULTS"
ROUNDS = ("2026-08", "2026-09", "2026-10")
RUN_TIMEOUT = 240


def _start_run(config_path: Path, period: str) -> subprocess.Popen[str]:
    """`baocao run` as an operator starts it, in its own process (its secrets are the pulling world's)."""
    command = [str(Path(sys.executable).with_name("baocao")), "run", "--report", REPORT, "--period", period]
    environment = {**os.environ, "COLUMNS": "500"}
    return subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [*command, "--config", str(config_path)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"baocao run still running after {RUN_TIMEOUT} s: {stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _race(world: PullingWorld, periods: tuple[str, str]) -> list[subprocess.CompletedProcess[str]]:
    racers = [_start_run(world.config_path, period) for period in periods]
    return [_finish(racer) for racer in racers]


def _accepted(world: PullingWorld, period: str) -> list[dict[str, object]]:
    return [receipt for receipt in world.sandbox.receipts() if receipt["period_id"] == period]


@pytest.fixture
def world(tmp_path: Path, warehouse_url: str) -> Iterator[PullingWorld]:
    with pulling_world(tmp_path, volume=600, warehouse_url=warehouse_url) as found:
        yield found


def test_two_runs_of_the_same_report_and_period_at_once(world: PullingWorld) -> None:
    started = time.monotonic()
    refused = 0
    for period in ROUNDS:
        results = _race(world, (period, period))
        for result in results:
            shown = f"exit {result.returncode}\n{result.stderr[-3000:]}"
            assert result.returncode in (0, 75), shown
            assert "Traceback" not in result.stdout + result.stderr, shown
            if result.returncode == 75:
                line = one_line_failure(result, "retriable")
                assert f"another run of {REPORT} {period} is in progress (pid " in line, line
                assert "try again later" in line
                refused += 1
        assert any(result.returncode == 0 for result in results), [r.stderr[-2000:] for r in results]
        accepted = _accepted(world, period)
        assert len(accepted) == 1, accepted
    print(f"\n{len(ROUNDS)} races, {refused} run(s) refused (75), {time.monotonic() - started:.1f} s")
    # The runs start together and each takes seconds: the lock must have turned one away at least once.
    assert refused >= 1
    # After the races a run of a raced period ends 0 and publishes nothing new.
    again = _finish(_start_run(world.config_path, ROUNDS[0]))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(_accepted(world, ROUNDS[0])) == 1


def test_two_runs_of_different_periods_at_once_both_publish(world: PullingWorld) -> None:
    results = _race(world, ROUNDS[:2])
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stdout + result.stderr
    assert [len(_accepted(world, period)) for period in ROUNDS[:2]] == [1, 1]
