"""The REST connector against the one-stop-shop simulator on loopback, faults and quirks switched on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime, timedelta

import pytest

from baocao.connectors.http import HttpClient
from baocao.connectors.rest_onestop import OneStopClient
from baocao.core.errors import RetriableError
from baocao.core.settings import RetryPolicy, Secret
from baocao.core.sources import RestOneStopSource
from baocao.simulators.onestop.generator import Dataset, generate
from baocao.simulators.onestop.server import Faults, RunningServer, Settings, start_in_thread
from baocao.transforms.canonical import canonical_record, deduplicate_latest

SECRET = "connector-test-secret"
FAST_RETRIES = RetryPolicy(timeout_seconds=5, max_attempts=8, backoff_base_seconds=0.01, backoff_max_seconds=0.2)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=11, volume=3000, start=date(2026, 9, 15), end=date(2026, 11, 14))


def source_for(server: RunningServer, retry: RetryPolicy = FAST_RETRIES, page_size: int = 200) -> RestOneStopSource:
    return RestOneStopSource(
        name="onestop-test",
        base_url=server.base_url,
        client_id_env=Secret("ID", "baocao"),
        client_secret_env=Secret("SECRET", SECRET),
        fields={},
        values={},
        page_size=page_size,
        overlap_minutes=60,
        **asdict(retry),
    )


@pytest.fixture
def faulty_server(dataset: Dataset) -> Iterator[RunningServer]:
    settings = Settings(
        client_id="baocao",
        client_secret=SECRET,
        token_ttl_seconds=2,
        as_of=dataset.horizon,
        naive_time_share=0.3,
        utc_time_share=0.2,
        nfd_field_name_share=0.3,
        faults=Faults(
            too_many_requests_share=0.15,
            unavailable_share=0.1,
            truncated_share=0.1,
            slow_share=0.05,
            slow_seconds=0.3,
            retry_after_seconds=1,
            seed=5,
        ),
    )
    with start_in_thread(dataset, settings) as server:
        yield server


def _truth(dataset: Dataset) -> dict[str, datetime]:
    return {d.code: d.updated_at.replace(tzinfo=None) + timedelta(0) for d in dataset.current_dossiers()}


def test_a_full_pull_with_faults_loses_and_doubles_nothing(dataset: Dataset, faulty_server: RunningServer) -> None:
    sleeps: list[float] = []
    http = HttpClient("source onestop-test", FAST_RETRIES, sleep=sleeps.append)
    client = OneStopClient(source_for(faulty_server), http)
    records = list(client.dossiers(None, datetime(2030, 1, 1)))
    rows = deduplicate_latest(canonical_record(record, {}, {}) for record in records)
    truth = {d.code: d for d in dataset.current_dossiers()}
    assert len(rows) == len(truth) == len({r["code"] for r in rows})
    for row in rows:
        expected = truth[row["code"]]
        assert row["status"] == expected.status.value
        assert row["updated_at"] == expected.updated_at.astimezone(expected.updated_at.tzinfo).replace(tzinfo=None)
        assert row["received_at"] == expected.received_at.replace(tzinfo=None)  # naive and UTC quirks undone
    assert http.waits, "faults were switched on: some tries must have been retried"
    assert all("Nguyễn" not in str(row) for row in rows)


def test_an_expired_token_is_replaced(dataset: Dataset, faulty_server: RunningServer) -> None:
    import time

    client = OneStopClient(
        source_for(faulty_server, page_size=1000), HttpClient("s", FAST_RETRIES, sleep=lambda _: None)
    )
    first = sum(1 for _ in client.dossiers(None, datetime(2030, 1, 1)))
    time.sleep(2.5)  # the simulator's tokens live 2 s; the client believes its token is still good
    client._token_expires = float("inf")
    second = sum(1 for _ in client.dossiers(None, datetime(2030, 1, 1)))
    assert first == second > 0
    assert client.token_fetches >= 2


def test_retry_after_is_honoured_and_the_budget_ends_in_a_clear_error(dataset: Dataset) -> None:
    settings = Settings(
        client_id="baocao", client_secret=SECRET, faults=Faults(too_many_requests_share=1.0, retry_after_seconds=2)
    )
    sleeps: list[float] = []
    policy = RetryPolicy(timeout_seconds=5, max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=60)
    with start_in_thread(dataset, settings) as server:
        client = OneStopClient(
            source_for(server, policy), HttpClient("source onestop-test", policy, sleep=sleeps.append)
        )
        with pytest.raises(
            RetriableError, match=r"source onestop-test: dossiers page 1 still failing after 4 tries: HTTP 429"
        ):
            list(client.dossiers(None, datetime(2030, 1, 1)))
    assert len(sleeps) == 3 and all(wait >= 2 for wait in sleeps)


def test_an_overlapping_incremental_pull_catches_late_commits(dataset: Dataset) -> None:
    """Versions stamped just before a pull's end become visible only after it (commit lag)."""
    lag = timedelta(hours=6)
    first_cut = datetime(2026, 10, 20, 12, 0)
    second_cut = first_cut + timedelta(days=3)
    settings = Settings(client_id="baocao", client_secret=SECRET, commit_lag_seconds=lag.total_seconds())
    with start_in_thread(dataset, settings) as server:
        client = OneStopClient(source_for(server, page_size=1000), HttpClient("s", FAST_RETRIES))
        from baocao.core.canonical import LOCAL_TIMEZONE

        server.set_clock(first_cut.replace(tzinfo=LOCAL_TIMEZONE))
        first = {r["code"]: r for r in (canonical_record(x, {}, {}) for x in client.dossiers(None, first_cut))}
        server.set_clock(second_cut.replace(tzinfo=LOCAL_TIMEZONE))
        overlapped = [
            canonical_record(x, {}, {}) for x in client.dossiers(first_cut - lag - timedelta(hours=1), second_cut)
        ]
        forward_only = [canonical_record(x, {}, {}) for x in client.dossiers(first_cut, second_cut)]

    def merged(second: list[dict[str, object]]) -> dict[str, datetime]:
        state = {code: row["updated_at"] for code, row in first.items()}
        for row in deduplicate_latest(second):
            state[str(row["code"])] = row["updated_at"]  # type: ignore[assignment]
        return state

    visible_at_second = second_cut - lag
    truth = {
        d.code: d.updated_at.replace(tzinfo=None)
        for d in dataset.current_dossiers(visible_at_second.replace(tzinfo=LOCAL_TIMEZONE))
    }
    late = {v.code for v in dataset.versions() if first_cut - lag < v.updated_at.replace(tzinfo=None) <= first_cut}
    assert late, "the data set must have versions stamped inside the lag before the first cut"
    assert merged(overlapped) == truth
    assert merged(forward_only) != truth  # a cursor that only moves forward misses the late commits
