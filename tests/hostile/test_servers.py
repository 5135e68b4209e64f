"""Servers that misbehave on purpose (issue 13, item 2 and the central's part of item 4): a one-stop API
that repeats its cursor forever, pages without end, trickles its body a byte at a time or asks for an
hour's pause, and a central that answers 201 with something other than a receipt, or with a receipt
for other bytes. Each case runs the real `baocao` command against a loopback server and must end in
one line with its exit code, well within a bound: no wait in the project is unbounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.storage import ledger
from tests.delivery.support import (
    BASE_PERIOD,
    REPORT,
    SECRETS_ENV,
    Sandbox,
    attempt_outcomes,
    ledger_rows,
    load_dossiers,
    run_cli,
    write_config,
)
from tests.hostile.support import one_line_failure
from tests.loopback import Answer, Served, send_json, serving, trickle

pytestmark = pytest.mark.hostile

# Every case ends within this from the server's first request on. The process's start before it (imports,
# the warehouse's schema) is not what these cases bound: on a loaded machine it alone can take 20 s.
BOUND_SECONDS = 15
# Short waits in every configuration: a case that waits for a timeout waits seconds, not minutes.
QUICK = {"max_attempts": 2, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2}
DOSSIER = {"code": "HS-0001", "agency_code": "000.00.01.H01", "updated_at": "2026-11-03T09:00:00+07:00"}


def onestop(dossiers: Answer) -> Answer:
    """The one-stop API: a token for anyone, an empty catalogue, and dossier pages as `dossiers` answers."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path == "/oauth/token":
            send_json(handler, 200, {"access_token": "hostile-token", "expires_in": 3600})
        elif path == "/api/v1/procedures":
            send_json(handler, 200, {"data": []})
        elif path == "/api/v1/dossiers":
            dossiers(handler)
        else:
            send_json(handler, 404, {"error": "NOT_FOUND"})

    return answer


def pull(tmp_path: Path, served: Served, **source_options: Any) -> tuple[Any, float]:
    """`baocao run --dry-run` of the base period against the server: the process, and the seconds from the
    server's first request to the process's end."""
    config = write_config(
        tmp_path,
        "http://127.0.0.1:9/api/v1",
        onestop_url=served.url,
        source_options={"timeout_seconds": 5, **QUICK, **source_options},
    )
    result = run_cli(
        "run", "--report", REPORT, "--period", BASE_PERIOD, "--config", str(config), "--dry-run", timeout=120
    )
    return result, served.since_first_request()


def dossier_requests(served: Served) -> list[float]:
    return [at for at, path in served.arrivals if path == "/api/v1/dossiers"]


# ---------------------------------------------------------------- the department's API


def test_a_cursor_handed_back_again_is_fatal_and_named(tmp_path: Path) -> None:
    with serving(
        onestop(lambda handler: send_json(handler, 200, {"data": [DOSSIER], "next_cursor": "page-42"}))
    ) as served:
        result, took = pull(tmp_path, served)
    line = one_line_failure(result, "fatal")
    assert "source onestop" in line and "'page-42'" in line and "already followed" in line, line
    assert DOSSIER["code"] not in result.stderr + result.stdout  # the cursor is named, no record's content
    assert took < BOUND_SECONDS


def test_more_pages_than_max_pages_is_fatal(tmp_path: Path) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        cursor = parse_qs(urlsplit(handler.path).query).get("cursor", ["0"])[0]
        send_json(handler, 200, {"data": [DOSSIER], "next_cursor": str(int(cursor) + 1)})

    with serving(onestop(endless)) as served:
        result, took = pull(tmp_path, served, max_pages=7)
    line = one_line_failure(result, "fatal")
    assert "source onestop" in line and "max_pages = 7" in line and "'7'" in line, line
    assert len(dossier_requests(served)) == 7
    assert took < BOUND_SECONDS


def test_a_body_trickled_a_byte_every_two_seconds_is_cut_at_the_deadline(tmp_path: Path) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        # Each gap shorter than the read timeout (5 s): only a deadline ends the answer.
        trickle(handler, json.dumps({"data": [DOSSIER]}).encode(), gap_seconds=2, count=20)

    with serving(onestop(slow)) as served:
        result, took = pull(tmp_path, served, deadline_seconds=3)
    line = one_line_failure(result, "retriable")
    assert "source onestop" in line and "deadline" in line, line
    first, second = dossier_requests(served)  # two tries (max_attempts = 2), the first cut at its deadline
    assert 2.5 < second - first < 3 + 2, second - first
    assert took < BOUND_SECONDS  # two tries of 3 s and a backoff: far below one try's 40 s of trickle


def test_a_retry_after_of_an_hour_ends_the_run_retriable_at_once(tmp_path: Path) -> None:
    def busy(handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 429, {"error": "TOO_MANY_REQUESTS"}, {"Retry-After": "3600"})

    with serving(onestop(busy)) as served:
        result, took = pull(tmp_path, served, max_wait_seconds=10, max_attempts=5)
    line = one_line_failure(result, "retriable")
    assert "Retry-After 3600 s" in line and "max_wait_seconds = 10" in line and "try again after" in line, line
    assert len(dossier_requests(served)) == 1  # no second try after a pause
    assert took < BOUND_SECONDS


# ---------------------------------------------------------------- the central endpoint


@pytest.fixture
def frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """A warehouse with the base period's report frozen for a central at the given URL; the config's path."""
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)

    def freeze(central_url: str) -> Path:
        config_path = write_config(tmp_path, central_url, max_attempts=2)
        config = load_config(config_path)
        load_dossiers(config)
        rendered = pipeline.render(config, REPORT, BASE_PERIOD)
        assert rendered.submission is not None and rendered.submission.state == ledger.State.FROZEN
        return config_path

    return freeze


def test_a_central_201_that_is_no_receipt_leaves_the_submission_frozen_and_a_rerun_sends_it_once(
    tmp_path: Path, frozen: Callable[[str], Path]
) -> None:
    posts: list[str] = []

    def wrong_shape(handler: BaseHTTPRequestHandler) -> None:
        posts.append(handler.path)
        send_json(handler, 201, [])

    with serving(wrong_shape) as served:
        config_path = frozen(served.url + "/api/v1")
        result = run_cli("publish", "--pending", "--config", str(config_path), timeout=120)
        took = served.since_first_request()
    line = one_line_failure(result, "retriable")
    assert "central answered HTTP 201 of the wrong shape" in line, line
    assert took < BOUND_SECONDS and len(posts) == 1
    config = load_config(config_path)
    (submission,) = ledger_rows(config)
    assert submission.state == ledger.State.FROZEN
    assert attempt_outcomes(config, submission.id) == ["NO_ANSWER"]  # the attempt is on record

    # The central answers properly again: the frozen submission goes out once, with its frozen key.
    sandbox = Sandbox(tmp_path / "central.db")
    try:
        write_config(tmp_path, sandbox.base_url)
        again = run_cli("publish", "--pending", "--config", str(config_path), timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        (receipt,) = sandbox.receipts()
        assert receipt["idempotency_key"] == submission.idempotency_key
        assert len(sandbox.posts()) == 1
    finally:
        sandbox.stop()
    assert ledger_rows(load_config(config_path))[0].state == ledger.State.ACCEPTED


def test_a_receipt_for_other_bytes_is_one_fatal_line_that_says_what_next_and_status_repeats_it(
    frozen: Callable[[str], Path],
) -> None:
    def other_bytes(handler: BaseHTTPRequestHandler) -> None:
        send_json(
            handler,
            201,
            {
                "receipt_id": "R-HOSTILE-1",
                "submission_id": "S-1",
                "sender": "000.00.00.H01",
                "report_type": REPORT,
                "period": BASE_PERIOD,
                "version": 1,
                "status": "accepted",
                "received_at": "2026-12-05T08:00:00Z",
                "sha256": "0" * 64,
                "supersedes": None,
                "duplicate": False,
            },
        )

    with serving(other_bytes) as served:
        config_path = frozen(served.url + "/api/v1")
        (submission,) = ledger_rows(load_config(config_path))
        result = run_cli("publish", "--submission", str(submission.id), "--config", str(config_path), timeout=120)
    line = one_line_failure(result, "fatal")
    assert "RECEIPT_MISMATCH" in line and "R-HOSTILE-1" in line and "what next:" in line, line
    assert ledger_rows(load_config(config_path))[0].state == ledger.State.FAILED

    status = run_cli("status", "--config", str(config_path), timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    hints = [text for text in status.stdout.splitlines() if "what next:" in text]
    assert len(hints) == 1 and f"submission #{submission.id}" in hints[0], status.stdout[-3000:]
    assert submission.idempotency_key in hints[0]
