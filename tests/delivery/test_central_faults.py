"""Central faults (issue #4, part 4), each injected for real on loopback and measured.

(a) the endpoint down for a long stretch, then in maintenance: runs fail retriable and leave the
backlog FROZEN; once it is back, `baocao publish --pending` drains it, nothing lost or doubled.
(b) 503/429 with Retry-After: the next attempt arrives at the sandbox no sooner than asked.
(c) an endpoint that accepts the connection and never answers, or never accepts it: every try
gives up within its timeout and publish fails retriable within retry budget x timeout + backoff.
(d) an answer cut off mid-body: the retry goes out with the same key and the central keeps one copy.
And the backoff itself: bounded by the cap and visibly jittered.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from baocao.connectors.central import CentralClient
from baocao.core.errors import RetriableError
from baocao.run import pipeline
from baocao.storage import ledger
from tests.delivery import workers
from tests.delivery.conftest import Spawner
from tests.delivery.support import (
    SECRETS_ENV,
    World,
    attempt_outcomes,
    copy_report_rows,
    freeze_all,
    ledger_rows,
    make_world,
    months,
    run_cli,
    write_config,
)

MakeWorld = Callable[..., World]


@pytest.fixture
def make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeWorld]:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    counter = itertools.count()
    with contextlib.ExitStack() as stack:

        def build(**settings: Any) -> World:
            world = make_world(tmp_path / f"world-{next(counter)}", **settings)
            found = next(world)
            stack.callback(world.close)
            return found

        yield build


def _frozen(world: World, first: date, count: int) -> list[ledger.Submission]:
    periods = months(first, count)
    copy_report_rows(world.config, periods)
    return freeze_all(world.config, periods)


# ---------------------------------------------------------------- (a) a long outage, then the backlog


def test_an_outage_leaves_the_backlog_frozen_and_one_drain_publishes_it(make: MakeWorld, spawner: Spawner) -> None:
    world = make(max_attempts=3, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    frozen = _frozen(world, date(2026, 3, 1), 6)
    config = str(world.config_path)
    world.sandbox.stop()  # the central is down: connections are refused

    down = run_cli("publish", "--pending", "--config", config)
    assert down.returncode == 75, down.stderr
    # (cli._fail's "[retriable (try again later)]" is eaten by rich as a markup tag: the exit code says it.)
    assert "still failing after 3 tries" in down.stderr and "Connection refused" in down.stderr
    outage_runs = [down.returncode]
    for _ in range(3):  # the scheduler keeps trying through the outage
        child = spawner.start(workers.publish_pending_child, config, SECRETS_ENV)
        outage_runs.append(child.wait())
        assert "ConnectionError" in child.result()["error"]
    world.sandbox.start()  # back, but in maintenance: 503 with Retry-After
    world.sandbox.set_mode("maintenance", retry_after=1)
    child = spawner.start(workers.publish_pending_child, config, SECRETS_ENV)
    outage_runs.append(child.wait())
    assert "HTTP 503" in child.result()["error"]
    assert outage_runs == [75] * 5
    held = ledger_rows(world.config)
    assert [row.state for row in held] == [ledger.State.FROZEN] * 6
    refused = world.sandbox.posts()
    assert world.sandbox.receipts() == [] and refused and all(p.status == 503 for p in refused)

    world.sandbox.set_mode("normal")
    drained = run_cli("publish", "--pending", "--config", config)
    assert drained.returncode == 0, drained.stderr
    assert "6 submission(s) accepted" in drained.stdout
    again = run_cli("publish", "--pending", "--config", config)
    assert again.returncode == 0 and "0 submission(s) accepted" in again.stdout

    receipts = world.sandbox.receipts()
    rows = ledger_rows(world.config)
    periods = [s.period_id for s in frozen]
    accepted_posts = [p for p in world.sandbox.posts() if p.status == 201]
    print(
        f"\noutage: {len(outage_runs)} runs (1 CLI, 3 scheduled: connection refused; 1 in maintenance: 503), "
        f"exit codes {outage_runs}, ledger {sum(r.state == ledger.State.FROZEN for r in held)}/6 FROZEN, "
        f"{len(refused)} POSTs answered 503, 0 at the sandbox"
    )
    print(
        f"drain (`baocao publish --pending`): exit {drained.returncode}, "
        f"{sum(r.state == ledger.State.ACCEPTED for r in rows)}/6 ACCEPTED, {len(receipts)} at the sandbox "
        f"({len(accepted_posts)} POSTs accepted), {len(receipts) - len(set(r['period_id'] for r in receipts))} "
        f"duplicates, {len(set(periods) - {r['period_id'] for r in receipts})} lost; a second drain sent nothing"
    )
    assert sorted(r["period_id"] for r in receipts) == sorted(periods)
    assert len(accepted_posts) == 6
    assert {(r.period_id, r.receipt_id) for r in rows} == {(r["period_id"], r["receipt_id"]) for r in receipts}
    assert all(r.state == ledger.State.ACCEPTED for r in rows)


# ---------------------------------------------------------------- (b) Retry-After honoured


def test_the_next_attempt_comes_no_sooner_than_retry_after(make: MakeWorld, spawner: Spawner) -> None:
    world = make(max_attempts=8, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    (submission,) = _frozen(world, date(2026, 5, 1), 1)
    key = submission.idempotency_key
    world.sandbox.set_mode("maintenance", retry_after=1)

    def answered(count: int) -> None:
        deadline = time.monotonic() + 30
        while sum(p.status is not None for p in world.sandbox.posts(key)) < count:
            assert time.monotonic() < deadline
            time.sleep(0.005)

    child = spawner.start(workers.publish_child, str(world.config_path), SECRETS_ENV, submission.id, None)
    answered(2)  # two 503s with Retry-After: 1, then two 429s with Retry-After: 2, then accepted
    world.sandbox.set_mode("overload", retry_after=2, overload_share=1)
    answered(4)
    world.sandbox.set_mode("normal")
    assert child.wait() == 0, child.result()

    posts = world.sandbox.posts(key)
    print("\nanswer (Retry-After)  ->  next attempt arrived after")
    gaps = []
    for earlier, later in itertools.pairwise(posts):
        assert earlier.answered_at is not None and earlier.retry_after is not None
        gap = later.at - earlier.answered_at
        gaps.append((earlier.status, earlier.retry_after, gap))
        print(f"  HTTP {earlier.status} (Retry-After: {earlier.retry_after:g} s)  ->  {gap:.3f} s")
    print(f"  HTTP {posts[-1].status}: accepted")
    assert [status for status, _, _ in gaps] == [503, 503, 429, 429] and posts[-1].status == 201
    for _, retry_after, gap in gaps:
        # Never sooner than asked; and not much later (the spread is 10 % of Retry-After, capped).
        assert retry_after <= gap < retry_after * 1.1 + 0.5


# ---------------------------------------------------------------- backoff: bounded and jittered


def test_backoff_is_bounded_and_jittered(make: MakeWorld) -> None:
    world = make(max_attempts=6, backoff_base_seconds=0.05, backoff_max_seconds=0.3)
    (submission,) = _frozen(world, date(2026, 6, 1), 1)
    world.sandbox.set_mode("maintenance", retry_after=0)  # 503 with Retry-After: 0, so only our backoff waits
    policy = world.config.central.retry
    ceilings = [min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2**n) for n in range(5)]
    print(f"\nbackoff ceilings per retry (base {policy.backoff_base_seconds} s, cap {policy.backoff_max_seconds} s):")
    print("  " + "  ".join(f"{c:.3f}" for c in ceilings))
    for run in range(3):
        client = CentralClient(world.config.central)  # the client publish uses, with its real sleep
        with pytest.raises(RetriableError, match="after 6 tries"):
            client.submit(submission.payload, submission.idempotency_key, submission.content_type)
        waits = client.http.waits
        print(f"  run {run + 1}: slept " + "  ".join(f"{w:.3f}" for w in waits))
        assert len(waits) == policy.max_attempts - 1  # bounded: 6 tries, 5 waits, then a retriable error
        assert len(set(waits)) == len(waits)  # jittered: no two waits alike
        assert all(0 <= w <= c <= policy.backoff_max_seconds for w, c in zip(waits, ceilings, strict=True))
    assert len(world.sandbox.posts(submission.idempotency_key)) == 3 * policy.max_attempts


# ---------------------------------------------------------------- (c) silent endpoints


class SilentEndpoint:
    """A TCP endpoint on loopback that accepts connections and never answers (`accepts=True`), or
    whose accept queue is full so that connecting never completes (`accepts=False`)."""

    def __init__(self, accepts: bool) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = 0
        if accepts:
            self.listener.listen(16)
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            self.listener.listen(0)
            filler = socket.create_connection(("127.0.0.1", self.port), timeout=2)  # fills the queue
            self.held.append(filler)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                self.accepted += 1
                self.held.append(connection)  # read nothing, answer nothing, keep it open

    def close(self) -> None:
        for held in self.held:
            held.close()
        self.listener.close()


@pytest.mark.parametrize("accepts", [True, False], ids=["accepts-never-answers", "never-accepts"])
def test_a_silent_endpoint_gives_up_within_the_budget(make: MakeWorld, spawner: Spawner, accepts: bool) -> None:
    timeout, attempts, base, cap = 1.0, 3, 0.1, 0.4
    world = make()
    (submission,) = _frozen(world, date(2026, 7, 1), 1)
    silent = SilentEndpoint(accepts)
    try:
        config = write_config(
            world.folder,
            f"http://127.0.0.1:{silent.port}/api/v1",
            file_name="silent.toml",
            write_registry=False,
            timeout_seconds=timeout,
            max_attempts=attempts,
            backoff_base_seconds=base,
            backoff_max_seconds=cap,
        )
        started = time.monotonic()
        child = spawner.start(workers.publish_child, str(config), SECRETS_ENV, submission.id, None)
        code = child.wait(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    result = child.result()
    backoff = sum(min(cap, base * 2**n) for n in range(attempts - 1))
    bound = attempts * timeout + backoff
    slack = 1.0  # starting the process, reading the configuration and the ledger
    print(
        f"\n{'accepts, never answers' if accepts else 'never accepts'}: retriable error after {elapsed:.2f} s "
        f"(publisher's own {result['seconds']:.2f} s); bound {attempts} tries x {timeout:g} s + backoff "
        f"<= {backoff:.2f} s = {bound:.2f} s (+{slack:g} s process start); "
        f"{silent.accepted if accepts else 0} connection(s) accepted"
    )
    assert code == 75, result
    assert ("ReadTimeout" if accepts else "ConnectTimeout") in result["error"]
    assert f"after {attempts} tries" in result["error"]
    assert attempts * timeout <= result["seconds"] <= bound + 0.5
    assert elapsed <= bound + slack
    if accepts:
        assert silent.accepted == attempts
    held = ledger.get(pipeline.engine_for(world.config), submission.id)
    assert held.state == ledger.State.FROZEN and "Timeout" in (held.last_error or "")


# ---------------------------------------------------------------- (d) an answer cut off mid-body


class CuttingProxy:
    """Forwards to the sandbox; the first answer to a POST is cut off mid-body, in one of three ways."""

    def __init__(self, target_root: str, style: str) -> None:
        self.target_root = target_root
        self.style = style
        self.keys: list[str] = []
        self.cut = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                return

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                proxy.keys.append(key)
                forwarded = {n: self.headers[n] for n in ("Authorization", "Content-Type", "Idempotency-Key")}
                answer = requests.post(proxy.target_root + self.path, data=body, headers=forwarded, timeout=30)
                if proxy.cut == 0:
                    proxy.cut += 1
                    self._cut_off(answer)
                    return
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Location", "Idempotent-Replayed", "Retry-After"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _cut_off(self, answer: requests.Response) -> None:
                half = answer.content[: len(answer.content) // 2]
                head = f"HTTP/1.1 {answer.status_code} Created\r\nContent-Type: application/json\r\n"
                if proxy.style == "content-length":  # promises the whole body, sends half
                    raw = f"{head}Content-Length: {len(answer.content)}\r\n\r\n".encode() + half
                elif proxy.style == "chunked":  # a chunk that promises more than it carries
                    raw = f"{head}Transfer-Encoding: chunked\r\n\r\n{len(answer.content):x}\r\n".encode() + half
                else:  # "close": no length, the body ends when the connection closes: half a JSON document
                    raw = f"{head}Connection: close\r\n\r\n".encode() + half
                self.wfile.write(raw)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("style", ["content-length", "chunked", "close"])
def test_an_answer_cut_off_mid_body_is_retried_with_the_same_key(make: MakeWorld, spawner: Spawner, style: str) -> None:
    world = make()
    (submission,) = _frozen(world, date(2026, 8, 1), 1)
    proxy = CuttingProxy(world.sandbox.root_url, style)
    try:
        config = write_config(
            world.folder, proxy.base_url, file_name="proxy.toml", write_registry=False, backoff_max_seconds=0.2
        )
        child = spawner.start(workers.publish_child, str(config), SECRETS_ENV, submission.id, None)
        code = child.wait()
    finally:
        proxy.close()
    assert code == 0, child.result() if child.result_path.exists() else "the publisher crashed (no result)"
    receipts = world.sandbox.receipts()
    at_sandbox = world.sandbox.posts(submission.idempotency_key)
    stored = ledger.get(pipeline.engine_for(world.config), submission.id)
    print(
        f"\ncut off ({style}): {len(proxy.keys)} POSTs, {len(set(proxy.keys))} key; sandbox answered "
        f"{[(p.status, 'replayed' if p.replayed else 'new') for p in at_sandbox]}; {len(receipts)} copy; "
        f"ledger {stored.state} {attempt_outcomes(world.config, submission.id)}"
    )
    assert proxy.keys == [submission.idempotency_key] * 2
    assert [(p.status, p.replayed) for p in at_sandbox] == [(201, False), (201, True)]
    assert len(receipts) == 1 and receipts[0]["receipt_id"] == stored.receipt_id
    assert stored.state == ledger.State.ACCEPTED
    assert attempt_outcomes(world.config, submission.id) == ["ACCEPTED (replayed)"]
