"""Crash safety (issue #4, part 3): the publisher is SIGKILLed between "payload frozen" and "receipt
stored", at each of three points, and the next run must leave exactly one copy of every submission
at the central and every ledger row ACCEPTED.

The points: before the POST (`BAOCAO_CRASH_AT=before_post`, baocao/faults.py); with the request in
flight (the sandbox holds its answer for `processing_delay` and the test kills the process from
outside once the sandbox's database shows the request being processed); after the answer arrived
but before it is stored (`BAOCAO_CRASH_AT=after_answer`). The publisher is a real process against
a real SQLite warehouse file and the real sandbox on loopback.
"""

from __future__ import annotations

import signal
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from baocao.run import pipeline
from baocao.run.faults import AFTER_ANSWER, BEFORE_POST, CRASH_AT_ENV, crash_point
from baocao.storage import ledger
from tests.delivery import workers
from tests.delivery.conftest import Child, Spawner
from tests.delivery.support import (
    SECRETS_ENV,
    Sandbox,
    World,
    attempt_outcomes,
    copy_report_rows,
    freeze_all,
    ledger_rows,
    make_world,
    months,
    run_cli,
)

KILLS_PER_POINT = 40
POINTS = ("before_post", "in_flight", "after_answer")
IN_FLIGHT_DELAY = 0.25  # seconds the sandbox holds an answer: the window for the outside kill


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    yield from make_world(tmp_path, max_attempts=4, backoff_base_seconds=0.05, backoff_max_seconds=0.5)


def _kill_in_flight(sandbox: Sandbox, key: str, child: Child) -> str | None:
    """SIGKILL the child as soon as the sandbox is processing its request; the state seen then."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.process.exitcode is None:
        state = sandbox.key_state(key)
        if state is not None:
            child.process.kill()
            return state
        time.sleep(0.002)
    child.process.kill()
    return None


@pytest.mark.slow
def test_sigkill_at_every_point_between_freeze_and_receipt(world: World, spawner: Spawner) -> None:
    started = time.monotonic()
    periods = months(date(2014, 1, 1), KILLS_PER_POINT * len(POINTS))
    copy_report_rows(world.config, periods)
    frozen = freeze_all(world.config, periods)
    prepared = time.monotonic() - started
    engine = pipeline.engine_for(world.config)
    config_path = str(world.config_path)
    cycles: dict[str, list[float]] = {point: [] for point in POINTS}
    outcomes: dict[str, Counter[str]] = {point: Counter() for point in POINTS}

    for index, submission in enumerate(frozen):
        point = POINTS[index // KILLS_PER_POINT]
        if index % KILLS_PER_POINT == 0:
            world.sandbox.set_mode("normal", processing_delay=IN_FLIGHT_DELAY if point == "in_flight" else 0)
        key = submission.idempotency_key
        cycle_started = time.monotonic()
        if point == "in_flight":
            child = workers_start(spawner, config_path, submission.id, None)
            assert _kill_in_flight(world.sandbox, key, child) == "processing"
        else:
            child = workers_start(spawner, config_path, submission.id, point)
        assert child.wait() == -signal.SIGKILL, f"{point}: the publisher was not killed"

        # What the kill left: the ledger still FROZEN (no receipt stored) and, at the sandbox, the
        # request sent or not depending on the point.
        held = ledger.get(engine, submission.id)
        assert (held.state, held.receipt_id, held.attempts) == (ledger.State.FROZEN, None, 0)
        assert len(world.sandbox.posts(key)) == (0 if point == "before_post" else 1)
        if point == "after_answer":
            assert world.sandbox.key_state(key) == "done"  # the central holds it; the ledger does not know

        rerun = workers_start(spawner, config_path, submission.id, None)
        assert rerun.wait() == 0, rerun.result()
        assert rerun.result()["receipt"]["period"] == submission.period_id
        cycles[point].append(time.monotonic() - cycle_started)
        outcomes[point].update(attempt_outcomes(world.config, submission.id))

    receipts = world.sandbox.receipts()
    copies = Counter(receipt["period_id"] for receipt in receipts)
    duplicates = sum(count - 1 for count in copies.values())
    lost = [s.period_id for s in frozen if copies[s.period_id] == 0]
    at_sandbox = {receipt["period_id"]: receipt for receipt in receipts}
    rows = ledger_rows(world.config)
    accepted = [row for row in rows if row.state == ledger.State.ACCEPTED]
    for row in rows:  # the ledger's receipt is the sandbox's, for the frozen bytes, under the frozen key
        held_there = at_sandbox[row.period_id]
        assert (row.receipt_id, row.sha256, row.idempotency_key) == (
            held_there["receipt_id"],
            held_there["sha256"],
            held_there["idempotency_key"],
        )
    for period in periods[:: len(periods) // 6]:  # and the read-back endpoint agrees
        assert len(world.sandbox.read_back(period)) == 1
    answers: dict[str, Counter[str]] = {point: Counter() for point in POINTS}  # what the sandbox answered
    for index, submission in enumerate(frozen):
        for post in world.sandbox.posts(submission.idempotency_key):
            answers[POINTS[index // KILLS_PER_POINT]][f"{post.status}{' replayed' if post.replayed else ''}"] += 1
    kills = KILLS_PER_POINT * len(POINTS)
    elapsed = time.monotonic() - started
    print(
        f"\n{kills} kills ({'/'.join(str(KILLS_PER_POINT) for _ in POINTS)}: before the POST / request in flight / "
        f"answer not yet stored): {len(copies)} submissions at the sandbox ({world.sandbox.stored_bodies()} bodies), "
        f"{duplicates} duplicates, {len(lost)} lost, ledger {len(accepted)}/{len(rows)} ACCEPTED"
    )
    for point in POINTS:
        print(
            f"  {point:<12} POSTs {sum(answers[point].values()):>3} {dict(answers[point])}  "
            f"next run's outcome {dict(outcomes[point])}  "
            f"kill+rerun {statistics.mean(cycles[point]):.2f} s mean, {max(cycles[point]):.2f} s max"
        )
    print(f"  runtime {elapsed:.1f} s (of which freezing {len(frozen)} submissions {prepared:.1f} s)")

    assert (len(copies), duplicates, lost) == (kills, 0, [])
    assert world.sandbox.stored_bodies() == kills
    assert len(accepted) == len(rows) == kills
    # Killed before the POST: the next run's POST is the first; killed later: the next run gets the
    # central's stored answer back (a replay), never a second copy.
    assert outcomes["before_post"] == Counter({"ACCEPTED": KILLS_PER_POINT})
    assert outcomes["after_answer"] == Counter({"ACCEPTED (replayed)": KILLS_PER_POINT})
    assert outcomes["in_flight"] == Counter({"ACCEPTED (replayed)": KILLS_PER_POINT})


def workers_start(spawner: Spawner, config_path: str, number: int, crash_at: str | None) -> Child:
    return spawner.start(workers.publish_child, config_path, SECRETS_ENV, number, crash_at)


def test_the_console_script_killed_after_the_answer_recovers_on_the_next_run(world: World) -> None:
    """The same hook in `baocao publish` itself (the console script, a fresh interpreter): killed
    after the central stored the submission, the next `baocao publish --pending` replays it."""
    (submission,) = freeze_all(world.config, ["2026-11"])
    killed = run_cli(
        "publish", "--submission", str(submission.id), "--config", str(world.config_path),
        env={CRASH_AT_ENV: AFTER_ANSWER},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert ledger.get(pipeline.engine_for(world.config), submission.id).state == ledger.State.FROZEN
    assert world.sandbox.key_state(submission.idempotency_key) == "done"
    rerun = run_cli("publish", "--pending", "--config", str(world.config_path))
    assert rerun.returncode == 0, rerun.stderr
    posts = world.sandbox.posts(submission.idempotency_key)
    print(
        f"\n`baocao publish` SIGKILLed after the answer (exit {killed.returncode}); `baocao publish --pending`: "
        f"exit {rerun.returncode}, sandbox answers {[(p.status, p.replayed) for p in posts]}, "
        f"{len(world.sandbox.receipts())} copy, ledger {attempt_outcomes(world.config, submission.id)}"
    )
    assert [(p.status, p.replayed) for p in posts] == [(201, False), (201, True)]
    assert len(world.sandbox.receipts()) == 1
    assert attempt_outcomes(world.config, submission.id) == ["ACCEPTED (replayed)"]


def test_a_crash_point_is_a_no_op_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_AT_ENV, raising=False)
    crash_point(BEFORE_POST)  # still alive
    monkeypatch.setenv(CRASH_AT_ENV, AFTER_ANSWER)
    crash_point(BEFORE_POST)  # another point named: still alive
    with pytest.raises(ValueError, match="unknown crash point"):
        crash_point("after_lunch")
