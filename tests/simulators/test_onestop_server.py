"""The one-stop-shop REST simulator over real HTTP on loopback: tokens, paging, windows, clock, quirks."""

from __future__ import annotations

import dataclasses
import os
import re
import select
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from baocao.simulators.onestop.generator import Dataset, generate
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Dossier
from baocao.simulators.onestop.server import RunningServer, Settings, start_in_thread

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "baocao-test"
CLIENT_SECRET = "not-a-real-secret"
OFFSET_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$")
NAIVE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DOSSIER_FIELDS = {
    "code",
    "agency_code",
    "procedure_code",
    "field_code",
    "field_name",
    "channel",
    "received_at",
    "due_at",
    "finished_at",
    "status",
    "fee_required",
    "paid_online",
    "digitized",
    "result_electronic",
    "rating",
    "applicant",
    "updated_at",
    "deleted",
}
PROCEDURE_FIELDS = {
    "code",
    "name",
    "field_code",
    "agency_code",
    "online_type",
    "fee_required",
    "online_payment",
    "published_on_time",
    "publication_updated_on_time",
    "content_complete",
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=21, volume=1_500, start=date(2026, 1, 15), end=date(2026, 3, 14))


@pytest.fixture(scope="module")
def end_of_data(dataset: Dataset) -> datetime:
    return dataset.horizon + timedelta(days=1)


def settings_for(end_of_data: datetime, **changes: Any) -> Settings:
    base = Settings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, as_of=end_of_data)
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def server(dataset: Dataset, end_of_data: datetime) -> Iterator[RunningServer]:
    with start_in_thread(dataset, settings_for(end_of_data)) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def fetch_token(session: requests.Session, base_url: str, secret: str = CLIENT_SECRET) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret}
    return session.post(f"{base_url}/oauth/token", data=form, timeout=10)


def token_for(session: requests.Session, base_url: str) -> str:
    response = fetch_token(session, base_url)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def get_dossiers(session: requests.Session, base_url: str, token: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return session.get(f"{base_url}/api/v1/dossiers", params=params, headers=headers, timeout=10)


def pull(session: requests.Session, base_url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every record of a window, following cursors; returns the records and the number of pages."""
    token = token_for(session, base_url)
    records: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = get_dossiers(session, base_url, token, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        records.extend(body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return records, pages


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=LOCAL_TIMEZONE) if moment.tzinfo is None else moment


def move_clock(session: requests.Session, server: RunningServer, as_of: datetime) -> None:
    response = session.post(f"{server.base_url}/_sim/clock", json={"as_of": rfc3339(as_of)}, timeout=10)
    assert response.status_code == 200, response.text
    assert parse(response.json()["as_of"]) == as_of


# ---------------------------------------------------------------- tokens


def test_token_flow(server: RunningServer, session: requests.Session) -> None:
    refused = fetch_token(session, server.base_url, secret="wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    wrong_grant = session.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=10,
    )
    assert wrong_grant.status_code == 400
    issued = fetch_token(session, server.base_url).json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 300 and issued["access_token"]
    assert get_dossiers(session, server.base_url, issued["access_token"], limit=1).status_code == 200
    anonymous = session.get(f"{server.base_url}/api/v1/dossiers", timeout=10)
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    assert get_dossiers(session, server.base_url, "made-up").status_code == 401


def test_token_expires_after_its_lifetime(dataset: Dataset, end_of_data: datetime, session: requests.Session) -> None:
    with start_in_thread(dataset, settings_for(end_of_data, token_ttl_seconds=1)) as short_lived:
        issued = fetch_token(session, short_lived.base_url).json()
        assert issued["expires_in"] == 1
        assert get_dossiers(session, short_lived.base_url, issued["access_token"], limit=1).status_code == 200
        time.sleep(1.2)
        expired = get_dossiers(session, short_lived.base_url, issued["access_token"], limit=1)
        assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
        fresh = token_for(session, short_lived.base_url)
        assert get_dossiers(session, short_lived.base_url, fresh, limit=1).status_code == 200


# ---------------------------------------------------------------- paging, order, windows


def test_paging_visits_every_dossier_exactly_once(
    server: RunningServer, session: requests.Session, dataset: Dataset
) -> None:
    records, pages = pull(session, server.base_url, limit=97)
    codes = [record["code"] for record in records]
    assert len(codes) == len(set(codes)) == len(dataset.dossiers)
    assert pages == -(-len(dataset.dossiers) // 97)
    latest = {dossier.code: dossier for dossier in dataset.current_dossiers()}
    for record in records:
        assert set(record) == DOSSIER_FIELDS
        assert set(record["applicant"]) == {"name", "id_number", "phone", "address"}
        expected = latest[record["code"]]
        assert parse(record["updated_at"]) == expected.updated_at
        assert record["status"] == expected.status.value
        assert record["deleted"] is expected.deleted
        assert OFFSET_TIME.match(record["received_at"])


def test_records_are_ordered_by_updated_at_then_code(server: RunningServer, session: requests.Session) -> None:
    records, _ = pull(session, server.base_url, limit=1000)
    keys = [(parse(record["updated_at"]), record["code"]) for record in records]
    assert all(earlier < later for earlier, later in zip(keys, keys[1:], strict=False))


def test_default_page_size_is_100(server: RunningServer, session: requests.Session) -> None:
    body = get_dossiers(session, server.base_url, token_for(session, server.base_url)).json()
    assert len(body["data"]) == 100 and body["next_cursor"]


def test_window_includes_its_start_and_excludes_its_end(
    server: RunningServer, session: requests.Session, dataset: Dataset
) -> None:
    final = dataset.current_dossiers()
    moment = sorted(dossier.updated_at for dossier in final)[len(final) // 2]
    later = moment + timedelta(days=3)
    expected = {dossier.code for dossier in final if moment <= dossier.updated_at < later}
    records, _ = pull(session, server.base_url, updated_from=rfc3339(moment), updated_to=rfc3339(later), limit=50)
    assert {record["code"] for record in records} == expected
    at_moment = {dossier.code for dossier in final if dossier.updated_at == moment}
    before, _ = pull(session, server.base_url, updated_to=rfc3339(moment))
    assert at_moment and not at_moment & {record["code"] for record in before}
    # Any offset means the same instant: the window in UTC gives the same records.
    in_utc, _ = pull(
        session,
        server.base_url,
        updated_from=moment.astimezone(UTC).isoformat(),
        updated_to=later.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    )
    assert {record["code"] for record in in_utc} == expected


def test_deleted_dossiers_appear_flagged(server: RunningServer, session: requests.Session, dataset: Dataset) -> None:
    records, _ = pull(session, server.base_url, limit=1000)
    deleted = {record["code"] for record in records if record["deleted"] is True}
    assert deleted == {dossier.code for dossier in dataset.current_dossiers() if dossier.deleted}
    assert deleted


def test_procedures(server: RunningServer, session: requests.Session, dataset: Dataset) -> None:
    token = token_for(session, server.base_url)
    assert session.get(f"{server.base_url}/api/v1/procedures", timeout=10).status_code == 401
    response = session.get(
        f"{server.base_url}/api/v1/procedures", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200
    procedures = response.json()["data"]
    assert len(procedures) == len(dataset.procedures)
    assert all(set(item) == PROCEDURE_FIELDS for item in procedures)
    assert {item["online_type"] for item in procedures} == {"FULL", "PARTIAL", "NONE"}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"updated_from": "2026-01-01"},
        {"updated_from": "2026-01-01T00:00:00"},
        {"updated_to": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"updated_from": "2026-02-01T00:00:00+07:00", "updated_to": "2026-01-01T00:00:00+07:00"},
    ],
)
def test_bad_parameters_are_refused(server: RunningServer, session: requests.Session, params: dict[str, Any]) -> None:
    response = get_dossiers(session, server.base_url, token_for(session, server.base_url), **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and response.json()["message"]


# ---------------------------------------------------------------- simulated clock and late commits


def history_with_versions(dataset: Dataset, count: int) -> Any:
    return next(history for history in dataset.dossiers if len(history.states) >= count)


def test_records_reappear_updated_when_the_clock_moves(
    dataset: Dataset, end_of_data: datetime, session: requests.Session
) -> None:
    history = history_with_versions(dataset, 3)
    first, second, last = history.states[0], history.states[1], history.states[-1]
    with start_in_thread(dataset, settings_for(end_of_data, as_of=second.updated_at)) as running:
        early, _ = pull(session, running.base_url, updated_to=rfc3339(second.updated_at + timedelta(seconds=1)))
        seen = [record for record in early if record["code"] == history.code]
        assert len(seen) == 1 and seen[0]["status"] == second.status.value
        assert parse(seen[0]["updated_at"]) == second.updated_at
        assert all(parse(record["updated_at"]) <= second.updated_at for record in early)
        move_clock(session, running, end_of_data)
        later, _ = pull(session, running.base_url, updated_from=rfc3339(second.updated_at + timedelta(seconds=1)))
        again = [record for record in later if record["code"] == history.code]
        assert len(again) == 1 and again[0]["status"] == last.status.value
        assert parse(again[0]["updated_at"]) == last.updated_at
        assert first.updated_at < second.updated_at < last.updated_at
        clock = session.get(f"{running.base_url}/_sim/clock", timeout=10).json()
        assert parse(clock["as_of"]) == end_of_data


def test_clock_modes(dataset: Dataset, session: requests.Session) -> None:
    """By default every version is visible; a live clock hides the future; null unfreezes the clock."""
    plain = Settings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with start_in_thread(dataset, plain) as running:
        everything, _ = pull(session, running.base_url, limit=1000)
        assert len(everything) == len(dataset.dossiers)
        assert session.get(f"{running.base_url}/_sim/clock", timeout=10).json()["mode"] == "end_of_data"
        earlier = dataset.horizon - timedelta(days=90)
        move_clock(session, running, earlier)
        assert len(pull(session, running.base_url, limit=1000)[0]) == len(dataset.current_dossiers(earlier))
        assert len(dataset.current_dossiers(earlier)) < len(dataset.dossiers)
        reset = session.post(f"{running.base_url}/_sim/clock", json={"as_of": None}, timeout=10).json()
        assert reset == {"as_of": None, "mode": "end_of_data", "now": None}
        assert len(pull(session, running.base_url, limit=1000)[0]) == len(dataset.dossiers)
    today = datetime.now(LOCAL_TIMEZONE).date()
    recent = generate(seed=4, volume=400, start=today - timedelta(days=60), end=today - timedelta(days=2))
    before = len(recent.current_dossiers(datetime.now(LOCAL_TIMEZONE)))
    with start_in_thread(recent, dataclasses.replace(plain, real_time=True)) as live:
        records, _ = pull(session, live.base_url, limit=1000)
        assert session.get(f"{live.base_url}/_sim/clock", timeout=10).json()["mode"] == "real_time"
    after = recent.current_dossiers(datetime.now(LOCAL_TIMEZONE))
    assert before <= len(records) <= len(after)
    assert all(parse(record["updated_at"]) <= datetime.now(LOCAL_TIMEZONE) for record in records)
    assert max(history.states[-1].updated_at for history in recent.dossiers) > datetime.now(LOCAL_TIMEZONE), (
        "the data set has future versions, which a live clock hides"
    )


def test_commit_lag_needs_an_overlap_window(dataset: Dataset, end_of_data: datetime, session: requests.Session) -> None:
    """A version stamped just before a pull's end is not visible yet; the next pull must reach back."""
    history = history_with_versions(dataset, 2)
    stamped = history.states[-1].updated_at
    pulled_until = stamped + timedelta(seconds=60)
    lag = 300
    with start_in_thread(dataset, settings_for(end_of_data, as_of=pulled_until, commit_lag_seconds=lag)) as running:
        first, _ = pull(session, running.base_url, updated_to=rfc3339(pulled_until))
        assert not any(record["code"] == history.code and parse(record["updated_at"]) == stamped for record in first), (
            "not committed yet at the first pull"
        )
        running.set_clock(pulled_until + timedelta(days=1))
        next_end = rfc3339(pulled_until + timedelta(days=1))
        naive, _ = pull(session, running.base_url, updated_from=rfc3339(pulled_until), updated_to=next_end)
        assert history.code not in {record["code"] for record in naive}
        overlapped, _ = pull(
            session,
            running.base_url,
            updated_from=rfc3339(pulled_until - timedelta(minutes=10)),
            updated_to=next_end,
        )
        caught = [record for record in overlapped if record["code"] == history.code]
        assert len(caught) == 1 and parse(caught[0]["updated_at"]) == stamped


# ---------------------------------------------------------------- quirks


def test_vendor_quirks_naive_times_and_decomposed_field_names(
    dataset: Dataset, end_of_data: datetime, session: requests.Session
) -> None:
    quirky = settings_for(end_of_data, naive_time_share=1.0, nfd_field_name_share=1.0)
    latest: dict[str, Dossier] = {dossier.code: dossier for dossier in dataset.current_dossiers()}
    with start_in_thread(dataset, quirky) as running:
        records, _ = pull(session, running.base_url, limit=1000)
    assert all(NAIVE_TIME.match(record["updated_at"]) for record in records)
    decomposed = 0
    for record in records:
        expected = latest[record["code"]]
        # A time without offset means local time (UTC+7).
        assert parse(record["received_at"]) == expected.received_at
        assert unicodedata.normalize("NFC", record["field_name"]) == expected.field_name
        decomposed += record["field_name"] != expected.field_name
    assert decomposed > len(records) // 2


def test_quirk_shares_mix_styles_and_utc(dataset: Dataset, end_of_data: datetime, session: requests.Session) -> None:
    mixed = settings_for(end_of_data, naive_time_share=0.3, utc_time_share=0.3)
    with start_in_thread(dataset, mixed) as running:
        records, _ = pull(session, running.base_url, limit=1000)
    styles = [
        "utc" if UTC_TIME.match(text) else "naive" if NAIVE_TIME.match(text) else "offset"
        for text in (record["updated_at"] for record in records)
    ]
    shares = {style: styles.count(style) / len(styles) for style in ("utc", "naive", "offset")}
    assert all(0.2 < share < 0.5 for share in shares.values()), shares


def test_base_path(dataset: Dataset, end_of_data: datetime, session: requests.Session) -> None:
    with start_in_thread(dataset, settings_for(end_of_data, base_path="/dvc")) as running:
        assert running.base_url.endswith("/dvc")
        records, _ = pull(session, running.base_url, limit=1000)
        assert len(records) == len(dataset.dossiers)


# ---------------------------------------------------------------- command line


def test_command_line_serves_and_shuts_down_cleanly(tmp_path: Path) -> None:
    registry = tmp_path / "agencies.csv"
    command = [
        sys.executable,
        "-m",
        "baocao.simulators.onestop",
        "--port",
        "0",
        "--volume",
        "300",
        "--client-id",
        CLIENT_ID,
        "--registry-out",
        str(registry),
        "--log-level",
        "warning",
    ]
    environment = {**os.environ, "ONESTOP_SIMULATOR_CLIENT_SECRET": CLIENT_SECRET}
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the simulator printed no base URL"
        base_url = process.stdout.readline().strip()
        assert re.match(r"^http://127\.0\.0\.1:\d+$", base_url)
        with requests.Session() as session:
            records, _ = pull(session, base_url, limit=1000)
        assert 0 < len(records) <= 300
        assert registry.read_text(encoding="utf-8").startswith("code,name,level\n")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0
