"""Central sandbox storage: concurrency on one key, several instances on one database, PostgreSQL, CLI."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from baocao.simulators.central import RunningSandbox, Settings, start_in_thread
from baocao.simulators.central.storage import Claimed, Storage, create_database_engine
from tests.simulators.central_support import (
    JSON,
    SENDER,
    TOKEN,
    XML,
    example,
    get,
    ict_document,
    post,
    settings_for,
    to_bytes,
)

DELAY = 1.0  # seconds every new submission stays "in progress"


def _simultaneously(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


def _one_key_twice_at_once(first: RunningSandbox, second: RunningSandbox) -> None:
    """Two requests with one key at the same moment: exactly one processes; the retry replays it."""
    body = example("tthc-results.xml")
    responses = _simultaneously(
        lambda: post(first.base_url, body, "same-key", XML), lambda: post(second.base_url, body, "same-key", XML)
    )
    by_status = {response.status_code: response for response in responses}
    assert sorted(by_status) == [201, 409], [r.text for r in responses]
    assert by_status[409].json()["error"] == "REQUEST_IN_PROGRESS"
    assert by_status[409].headers["Retry-After"]
    retry = post(second.base_url, body, "same-key", XML)
    assert retry.status_code == 201 and retry.content == by_status[201].content
    assert retry.headers["Idempotent-Replayed"] == "true"


def _one_version_under_two_keys_at_once(first: RunningSandbox, second: RunningSandbox) -> None:
    """Same report under two keys at once: one receipt, the other answer is that receipt as a duplicate."""
    body = to_bytes(ict_document())
    responses = _simultaneously(
        lambda: post(first.base_url, body, "key-a", JSON), lambda: post(second.base_url, body, "key-b", JSON)
    )
    by_status = {response.status_code: response.json() for response in responses}
    assert sorted(by_status) == [200, 201], by_status
    assert by_status[200] == {**by_status[201], "duplicate": True}
    listed = get(first.base_url, "/submissions", report_type="ICT_RANKING", period="2025").json()
    assert len(listed) == 1


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'central.sqlite3'}"


def test_simultaneous_requests_with_one_key_process_once(sqlite_url: str) -> None:
    with start_in_thread(settings_for(sqlite_url, processing_delay=DELAY)) as sandbox:
        _one_key_twice_at_once(sandbox, sandbox)


def test_instances_sharing_a_sqlite_file_share_keys_and_versions(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, processing_delay=DELAY)
    with start_in_thread(settings) as first, start_in_thread(settings) as second:
        _one_key_twice_at_once(first, second)
        _one_version_under_two_keys_at_once(first, second)
        # Fault mode lives in the database: switching it on one instance switches all of them.
        first.set_mode("maintenance", retry_after=1)
        assert post(second.base_url, b"{}", "k", JSON).status_code == 503


def test_accepted_bodies_are_kept_byte_for_byte(sqlite_url: str) -> None:
    body = example("tthc-results.xml")
    with start_in_thread(settings_for(sqlite_url)) as sandbox:
        receipt = post(sandbox.base_url, body, "keep-me", XML).json()
    storage = Storage(create_database_engine(sqlite_url))
    assert storage.stored_body(receipt["receipt_id"]) == ("application/xml", body)
    storage.dispose()


def test_a_stale_in_progress_marker_is_taken_over(sqlite_url: str) -> None:
    body = example("tthc-results.json")
    with start_in_thread(settings_for(sqlite_url, processing_lease_seconds=0.5)) as sandbox:
        # A worker claimed the key and died before answering.
        storage = Storage(create_database_engine(sqlite_url))
        crashed = storage.claim(SENDER, "orphan", hashlib.sha256(body).hexdigest(), time.time(), 0.5)
        assert isinstance(crashed, Claimed)
        assert post(sandbox.base_url, body, "orphan", JSON).json()["error"] == "REQUEST_IN_PROGRESS"
        time.sleep(0.6)
        assert post(sandbox.base_url, body, "orphan", JSON).status_code == 201
        storage.dispose()


def test_finished_keys_are_forgotten_only_after_the_retention(sqlite_url: str) -> None:
    storage = Storage(create_database_engine(sqlite_url))
    storage.create_tables()
    day = 86_400.0
    now = time.time()
    for key, age in (("old", 31 * day), ("recent", 29 * day)):
        claim = storage.claim(SENDER, key, "0" * 64, now - age, 300)
        assert isinstance(claim, Claimed)
        with storage.transaction() as connection:
            storage.finish(connection, SENDER, key, claim.claim_id, 201, b"{}", None)
    assert storage.purge_idempotency_keys(now - 30 * day) == 1
    assert storage.claim(SENDER, "recent", "0" * 64, now, 300).__class__.__name__ == "Replay"
    assert isinstance(storage.claim(SENDER, "old", "0" * 64, now, 300), Claimed)  # forgotten: new again
    storage.dispose()
    with pytest.raises(ValueError):
        Settings(database_url=sqlite_url, idempotency_retention_days=29)


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def postgres_schema(postgres_admin_url: str) -> Iterator[str]:
    """A schema of our own in the shared test database, dropped afterwards."""
    schema = f"central_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        yield schema
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_postgresql_storage_with_two_instances(postgres_admin_url: str, postgres_schema: str) -> None:
    settings = settings_for(postgres_admin_url, database_schema=postgres_schema, processing_delay=DELAY)
    with start_in_thread(settings) as first, start_in_thread(settings) as second:
        _one_key_twice_at_once(first, second)
        _one_version_under_two_keys_at_once(first, second)
        v1 = get(first.base_url, "/submissions", report_type="TTHC_RESULTS", period="2026-11").json()[0]
        assert get(second.base_url, f"/submissions/{v1['receipt_id']}").json() == v1
    engine = sa.create_engine(postgres_admin_url)
    with engine.connect() as connection:
        tables = set(
            connection.execute(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": postgres_schema},
            ).scalars()
        )
    engine.dispose()
    assert {"central_idempotency_keys", "central_receipts", "central_submission_bodies"} <= tables


# ---------------------------------------------------------------- command line


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "baocao.simulators.central", "--port", "0", "--log-level", "warning",
         "--database-url", f"sqlite:///{tmp_path / 'cli.sqlite3'}", "--sender", f"{TOKEN}={SENDER}", *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1"), base_url
    return process, base_url


def _post_when_ready(base_url: str, body: bytes, key: str) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return post(base_url, body, key, JSON)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_command_line_serves_until_sigterm(tmp_path: Path, workers: str) -> None:
    process, base_url = _serve(tmp_path, "--workers", workers)
    try:
        body = example("tthc-results.json")
        assert _post_when_ready(base_url, body, "cli").status_code == 201
        assert post(base_url, body, "cli", JSON).headers["Idempotent-Replayed"] == "true"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
