"""Fault injection of the one-stop-shop simulator: each failure mode happens, at random, never forever."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.client import HTTPConnection, IncompleteRead
from urllib.parse import urlsplit

import pytest
import requests

from baocao.simulators.onestop.generator import Dataset, generate
from baocao.simulators.onestop.server import Endpoint, Faults, Settings, TruncationStyle, start_in_thread

CLIENT_ID = "baocao-test"
CLIENT_SECRET = "not-a-real-secret"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=31, volume=600, start=date(2026, 1, 15), end=date(2026, 3, 14))


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def settings_with(dataset: Dataset, faults: Faults) -> Settings:
    return Settings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        as_of=dataset.horizon + timedelta(days=1),
        faults=faults,
    )


def token_for(session: requests.Session, base_url: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    response = session.post(f"{base_url}/oauth/token", data=form, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def get_page(session: requests.Session, base_url: str, token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return session.get(f"{base_url}/api/v1/dossiers", params={"limit": 200}, headers=headers, timeout=10)


def test_too_many_requests_with_retry_after(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(too_many_requests_share=1.0, retry_after_seconds=3)
    with start_in_thread(dataset, settings_with(dataset, faults)) as server:
        token = token_for(session, server.base_url)  # faults hit the dossiers endpoint only, by default
        response = get_page(session, server.base_url, token)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"] == "rate_limited"


def test_service_unavailable_with_retry_after(dataset: Dataset, session: requests.Session) -> None:
    with start_in_thread(dataset, settings_with(dataset, Faults(unavailable_share=1.0))) as server:
        response = get_page(session, server.base_url, token_for(session, server.base_url))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_gateway_errors_without_advice(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(unavailable_share=1.0, unavailable_statuses=(502, 504))
    with start_in_thread(dataset, settings_with(dataset, faults)) as server:
        token = token_for(session, server.base_url)
        statuses = {get_page(session, server.base_url, token).status_code for _ in range(20)}
    assert statuses == {502, 504}


def test_slow_answers(dataset: Dataset, session: requests.Session) -> None:
    with start_in_thread(dataset, settings_with(dataset, Faults(slow_share=1.0, slow_seconds=0.6))) as server:
        token = token_for(session, server.base_url)
        started = time.perf_counter()
        response = get_page(session, server.base_url, token)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200 and len(response.json()["data"]) == 200
    assert elapsed >= 0.6


def test_page_cut_off_with_connection_closed(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(truncated_share=1.0, truncation_styles=(TruncationStyle.INCOMPLETE_READ,))
    with start_in_thread(dataset, settings_with(dataset, faults)) as server:
        token = token_for(session, server.base_url)
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as raised:
            get_page(session, server.base_url, token)
        assert "IncompleteRead" in str(raised.value)
        # A plain HTTP client sees the same: the promised Content-Length never arrives.
        address = urlsplit(server.base_url)
        connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
        try:
            connection.request("GET", "/api/v1/dossiers?limit=200", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            assert response.status == 200
            with pytest.raises(IncompleteRead):
                response.read()
        finally:
            connection.close()


def test_page_cut_off_as_invalid_json(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(truncated_share=1.0, truncation_styles=(TruncationStyle.INVALID_JSON,))
    with start_in_thread(dataset, settings_with(dataset, faults)) as server:
        response = get_page(session, server.base_url, token_for(session, server.base_url))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_faults_are_random_per_request_and_seeded(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(too_many_requests_share=0.3, unavailable_share=0.3, seed=42)
    sequences = []
    for _ in range(2):
        with start_in_thread(dataset, settings_with(dataset, faults)) as server:
            token = token_for(session, server.base_url)
            sequences.append([get_page(session, server.base_url, token).status_code for _ in range(40)])
    assert sequences[0] == sequences[1], "the same seed gives the same faults"
    assert {200, 429, 503} == set(sequences[0]), "faults come and go; retrying gets through"


def test_token_and_procedures_only_fail_when_configured(dataset: Dataset, session: requests.Session) -> None:
    everywhere = Faults(
        unavailable_share=1.0,
        endpoints=frozenset({Endpoint.TOKEN, Endpoint.PROCEDURES, Endpoint.DOSSIERS}),
    )
    with start_in_thread(dataset, settings_with(dataset, everywhere)) as server:
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        assert session.post(f"{server.base_url}/oauth/token", data=form, timeout=10).status_code == 503
        assert session.get(f"{server.base_url}/api/v1/procedures", timeout=10).status_code == 503


def test_server_keeps_serving_after_a_cut_off_page(dataset: Dataset, session: requests.Session) -> None:
    faults = Faults(truncated_share=0.5, seed=3)
    with start_in_thread(dataset, settings_with(dataset, faults)) as server:
        token = token_for(session, server.base_url)
        outcomes = []
        for _ in range(12):
            try:
                get_page(session, server.base_url, token).json()
                outcomes.append("whole")
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.JSONDecodeError):
                outcomes.append("cut")
    assert {"whole", "cut"} == set(outcomes)
