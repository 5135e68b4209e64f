"""Every wait of an HTTP call is bounded (issue 13, item 2): a try ends at its total deadline however the
server trickles its body, no pause between tries is longer than max_wait_seconds, and a server asking
for a longer one ends the call at once, retriable, saying when to come back. The same deadline holds
for the catalogue download and the central client; a central 2xx that is no receipt is retriable."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from baocao.connectors.catalogue_xml import read_catalogue_url
from baocao.connectors.central import CentralClient, Verdict
from baocao.connectors.http import HttpClient, read_json
from baocao.core.errors import RetriableError
from baocao.core.settings import CentralConfig, RetryPolicy, Secret, SubmissionFormat
from baocao.core.sources import CatalogueXmlSource, RestOneStopSource
from baocao.run.config import load_config
from tests.delivery.support import SECRETS_ENV, write_config
from tests.loopback import send_json, serving, trickle

POLICY = RetryPolicy(timeout_seconds=2, max_attempts=1, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
BODY = json.dumps({"data": [{"code": "HS-1"}] * 5}).encode()


def test_the_deadline_is_four_timeouts_unless_set() -> None:
    assert RetryPolicy(timeout_seconds=7).deadline == 28
    assert RetryPolicy(timeout_seconds=7, deadline_seconds=3).deadline == 3


def test_a_trickled_body_is_cut_at_the_deadline_not_after_the_body() -> None:
    # A byte every 0.3 s: no read ever waits the 2 s read timeout; the body would take 30 s.
    with serving(lambda handler: trickle(handler, BODY, gap_seconds=0.3, count=100)) as served:
        client = HttpClient("test server", replace(POLICY, deadline_seconds=1.0))
        started = time.monotonic()
        with pytest.raises(RetriableError, match="not complete by the deadline"):
            client.call("GET", served.url + "/slow", read_json, "slow page")
        took = time.monotonic() - started
    assert 0.9 < took < 1.8, took


def _trickled_headers(handler: BaseHTTPRequestHandler) -> None:
    # The status line and headers a byte every 0.3 s: no read waits the 2 s read timeout, and requests
    # reads all of them before it hands the response over (the body-side deadline never runs).
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"
    for byte in head:
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            return  # the client hung up: what the test waits for
        time.sleep(0.3)


def test_trickled_headers_are_cut_at_the_deadline() -> None:
    with serving(_trickled_headers) as served:
        client = HttpClient("test server", replace(POLICY, deadline_seconds=1.0))
        started = time.monotonic()
        with pytest.raises(RetriableError, match="not complete by the deadline"):
            client.call("GET", served.url + "/slow-head", read_json, "slow page")
        took = time.monotonic() - started
    assert 0.9 < took < 3.0, took


def test_a_wait_for_a_byte_past_the_deadline_is_cut_at_the_deadline() -> None:
    # One byte, then nothing for longer than the deadline (but shorter than the read timeout).
    with serving(lambda handler: trickle(handler, BODY, gap_seconds=1.8, count=2)) as served:
        client = HttpClient("test server", replace(POLICY, deadline_seconds=0.8))
        started = time.monotonic()
        with pytest.raises(RetriableError, match="deadline"):
            client.call("GET", served.url + "/stalled", read_json, "stalled page")
        took = time.monotonic() - started
    assert took < 1.5, took


def test_a_body_that_arrives_in_pieces_within_the_deadline_is_read_whole() -> None:
    with serving(lambda handler: trickle(handler, BODY, gap_seconds=0.0, count=len(BODY))) as served:
        body = HttpClient("test server", replace(POLICY, deadline_seconds=5)).call(
            "GET", served.url + "/pieces", read_json, "page"
        )
    assert body == json.loads(BODY)


def test_a_retry_after_longer_than_max_wait_ends_the_call_at_once_saying_when_to_come_back() -> None:
    slept: list[float] = []

    def busy(handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 503, {"error": "MAINTENANCE"}, {"Retry-After": "3600"})

    with serving(busy) as served:
        client = HttpClient("test server", replace(POLICY, max_attempts=5, max_wait_seconds=60), sleep=slept.append)
        with pytest.raises(
            RetriableError, match=r"Retry-After 3600 s.*max_wait_seconds = 60.*try again after"
        ) as raised:
            client.call("GET", served.url + "/busy", read_json, "page")
    assert slept == [] and len(served.arrivals) == 1
    assert raised.value.retry_after == 3600


def test_a_retry_after_within_max_wait_is_honoured_and_no_pause_exceeds_max_wait() -> None:
    slept: list[float] = []

    def busy(handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 429, {"error": "SLOW_DOWN"}, {"Retry-After": "4"})

    with serving(busy) as served:
        policy = replace(POLICY, max_attempts=3, backoff_base_seconds=50, backoff_max_seconds=100, max_wait_seconds=5)
        with pytest.raises(RetriableError, match="still failing after 3 tries"):
            HttpClient("test server", policy, sleep=slept.append).call("GET", served.url + "/busy", read_json, "page")
    assert len(slept) == 2 and all(4 <= pause <= 5 for pause in slept), slept
    assert len(served.arrivals) == 3


def test_backoff_without_retry_after_is_capped_by_max_wait() -> None:
    slept: list[float] = []
    with serving(lambda handler: send_json(handler, 502, {"error": "BAD_GATEWAY"})) as served:
        policy = replace(
            POLICY, max_attempts=4, backoff_base_seconds=100, backoff_max_seconds=100, max_wait_seconds=0.2
        )
        with pytest.raises(RetriableError):
            HttpClient("test server", policy, sleep=slept.append).call("GET", served.url + "/down", read_json, "page")
    assert len(slept) == 3 and max(slept) <= 0.2, slept


def test_the_catalogue_download_has_a_total_deadline(tmp_path: Path) -> None:
    xml = b"<?xml version='1.0' encoding='UTF-8'?><catalogue>" + b" " * 500 + b"</catalogue>"
    with serving(lambda handler: trickle(handler, xml, gap_seconds=0.3, count=200)) as served:
        started = time.monotonic()
        with pytest.raises(RetriableError, match="deadline"):
            read_catalogue_url(served.url + "/catalogue.xml", timeout=2, deadline_seconds=1)
        took = time.monotonic() - started
    assert took < 1.8, took


def test_the_central_client_has_the_same_deadline() -> None:
    central = CentralConfig("", Secret("TOKEN", "t"), SubmissionFormat.JSON, replace(POLICY, deadline_seconds=1))
    with serving(lambda handler: trickle(handler, b'{"receipt_id": "R"}', gap_seconds=0.3, count=100)) as served:
        client = CentralClient(replace(central, url=served.url))
        started = time.monotonic()
        with pytest.raises(RetriableError, match="deadline"):
            client.submit(b"{}", "key-1", "application/json")
        took = time.monotonic() - started
    assert took < 1.8, took


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "a JSON list, not an object"),
        ({"receipt_id": "R-1", "sha256": "ab"}, "no submission_id"),
        ("accepted", "a JSON str"),
    ],
)
def test_a_central_2xx_that_is_no_receipt_is_retriable(body: object, problem: str) -> None:
    central = CentralConfig("", Secret("TOKEN", "t"), SubmissionFormat.JSON, POLICY)
    wrong_shape = f"central answered HTTP 201 of the wrong shape \\({problem}"
    with (
        serving(lambda handler: send_json(handler, 201, body)) as served,
        pytest.raises(RetriableError, match=wrong_shape),
    ):
        CentralClient(replace(central, url=served.url)).submit(b"{}", "key-1", "application/json")
    assert len(served.arrivals) == 1  # not retried in a loop: the submission stays frozen for the next run


def test_a_receipt_for_other_bytes_is_a_conflict_naming_the_receipt() -> None:
    receipt = {
        "receipt_id": "R-9",
        "submission_id": "S",
        "sender": "X",
        "report_type": "TTHC_RESULTS",
        "period": "2026-11",
        "version": 1,
        "status": "accepted",
        "received_at": "2026-12-01T00:00:00Z",
        "sha256": "f" * 64,
        "supersedes": None,
        "duplicate": False,
    }
    central = CentralConfig("", Secret("TOKEN", "t"), SubmissionFormat.JSON, POLICY)
    with serving(lambda handler: send_json(handler, 201, receipt)) as served:
        answer = CentralClient(replace(central, url=served.url)).submit(b"{}", "key-1", "application/json")
    assert answer.verdict is Verdict.CONFLICT and answer.code == "RECEIPT_MISMATCH" and "R-9" in answer.message


def test_the_settings_are_read_from_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(
        write_config(
            tmp_path,
            "http://127.0.0.1:9/api/v1",
            source_options={"deadline_seconds": 12, "max_wait_seconds": 30, "max_pages": 40},
            central_options={"deadline_seconds": 9, "max_wait_seconds": 20},
        )
    )
    source = config.source("onestop")
    assert isinstance(source, RestOneStopSource)
    assert (source.retry.deadline, source.retry.max_wait_seconds, source.max_pages) == (12, 30, 40)
    assert (config.central.retry.deadline, config.central.retry.max_wait_seconds) == (9, 20)
    assert CatalogueXmlSource.model_fields["deadline_seconds"].default is None  # 4 timeouts
