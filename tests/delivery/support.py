"""The delivery tests' world: a real central sandbox on loopback that logs every request it gets, a
configuration and a SQLite warehouse file with report rows for as many periods as a test needs.

The sandbox is the project's own (`simulators.central.create_app`), served in a thread of the test
process and wrapped in `RequestLog`, an ASGI layer that notes each request's arrival time, key and
answer, so a test can count POSTs at the sandbox and measure the gaps between retries. The
publishers under test run in other processes (see `workers.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import uvicorn

from baocao.core import tables
from baocao.core.report import Report
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central import create_app
from baocao.simulators.central.settings import Settings
from baocao.storage import ledger, warehouse
from baocao.storage import reports as stored_reports
from tests import central_readback
from tests.transforms.test_tthc_aggregation import DOSSIERS, REGISTRY

TOKEN = "delivery-test-central-token"  # noqa: S105 - a throw-away token of the loopback sandbox
SENDER = demo.DEMO_SENDER
REPORT = "TTHC_RESULTS"
BASE_PERIOD = "2026-11"  # the hand-computed dossiers of tests/transforms/test_tthc_aggregation.py
SECRETS_ENV = {demo.CENTRAL_TOKEN_ENV: TOKEN, demo.CLIENT_ID_ENV: "unused", demo.CLIENT_SECRET_ENV: "unused"}


# ---------------------------------------------------------------- the sandbox, with a request log


@dataclass
class Arrival:
    """One request as the sandbox saw it: when it arrived (monotonic clock) and what it answered."""

    at: float
    method: str
    path: str
    key: str
    status: int | None = None
    retry_after: float | None = None
    answered_at: float | None = None
    replayed: bool = False


@dataclass
class RequestLog:
    """ASGI wrapper noting every HTTP request before the app sees it, and the status it answered."""

    app: Any
    arrivals: list[Arrival] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        arrival = Arrival(
            time.monotonic(), scope["method"], scope["path"], headers.get(b"idempotency-key", b"").decode()
        )
        self.arrivals.append(arrival)

        async def noting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                arrival.status = int(message["status"])
                arrival.answered_at = time.monotonic()
                for name, value in message.get("headers") or []:
                    if name.lower() == b"retry-after":
                        arrival.retry_after = float(value)
                    if name.lower() == b"idempotent-replayed":
                        arrival.replayed = value.lower() == b"true"
            await send(message)

        await self.app(scope, receive, noting_send)


class Sandbox:
    """The central sandbox on a fixed loopback port; it can be stopped and started again (an outage)."""

    def __init__(self, database: Path, **settings: Any) -> None:
        self.settings = Settings(database_url=f"sqlite:///{database}", tokens={TOKEN: SENDER}, **settings)
        self.port = demo.free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root_url + "/api/v1"
        self.arrivals: list[Arrival] = []
        self.database = sa.create_engine(self.settings.database_url)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.start()

    def start(self) -> None:
        log = RequestLog(create_app(self.settings), self.arrivals)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        server = uvicorn.Server(uvicorn.Config(log, log_level="warning", access_log=False, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the central sandbox did not start"
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock

    def stop(self) -> None:
        if self._server is None:
            return
        assert self._thread is not None and self._socket is not None
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        self._server = self._thread = self._socket = None

    def set_mode(self, mode: str | None = None, **values: float) -> None:
        wanted: dict[str, Any] = {"mode": mode} if mode else {}
        wanted.update(values)
        requests.post(self.root_url + "/_sandbox/mode", json=wanted, timeout=10).raise_for_status()

    def posts(self, key: str | None = None) -> list[Arrival]:
        return [
            a for a in self.arrivals if a.method == "POST" and a.path.endswith("/submissions") and key in (None, a.key)
        ]

    def receipts(self) -> list[dict[str, Any]]:
        """Every accepted submission the sandbox holds, read from its own database."""
        with self.database.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT receipt_id, report_type, period_id, version, sha256, idempotency_key "
                    "FROM central_receipts ORDER BY period_id"
                )
            )
            return [dict(row._mapping) for row in rows]

    def stored_bodies(self) -> int:
        with self.database.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM central_submission_bodies")).scalar_one())

    def key_state(self, key: str) -> str | None:
        """'processing' while the sandbox works on the first request with this key, then 'done'."""
        with self.database.connect() as connection:
            return connection.execute(
                sa.text("SELECT state FROM central_idempotency_keys WHERE idempotency_key = :key"), {"key": key}
            ).scalar_one_or_none()

    def read_back(self, period_id: str) -> list[dict[str, Any]]:
        """GET /submissions?report_type=&period= as the province would."""
        return central_readback.submissions(self.base_url, TOKEN, REPORT, period_id)


# ---------------------------------------------------------------- configuration and warehouse


def write_config(
    folder: Path,
    central_url: str,
    *,
    fmt: str = "xml",
    warehouse_url: str | None = None,
    timeout_seconds: float = 5,
    max_attempts: int = 4,
    backoff_base_seconds: float = 0.05,
    backoff_max_seconds: float = 0.5,
    onestop_url: str = "http://127.0.0.1:9",
    write_registry: bool = True,
    file_name: str = "baocao.toml",
    source_options: dict[str, Any] | None = None,
    central_options: dict[str, Any] | None = None,
) -> Path:
    """A complete configuration; the agency registry is the hand-computed tests' three agencies
    unless `write_registry` is false (the one-stop-shop simulator writes its own). `source_options` and
    `central_options` add keys to the one-stop source's table and to [central] (say, small deadlines)."""
    folder.mkdir(parents=True, exist_ok=True)
    if write_registry:
        (folder / "agencies.csv").write_text(
            "code,name,level\n" + "".join(f"{a.code},{a.name},{a.level.value}\n" for a in REGISTRY.agencies),
            encoding="utf-8",
        )
    path = folder / file_name  # another file in the same folder shares the warehouse (var/)
    path.write_text(
        f"""[province]
code = "{SENDER}"
name = "{demo.DEMO_SENDER_NAME}"

[paths]
data_dir = "var"

[warehouse]
url = "{warehouse_url or "sqlite:///var/warehouse.db"}"

[registry]
agencies = "agencies.csv"

[central]
url = "{central_url}"
token_env = "{demo.CENTRAL_TOKEN_ENV}"
format = "{fmt}"
timeout_seconds = {timeout_seconds}
max_attempts = {max_attempts}
backoff_base_seconds = {backoff_base_seconds}
backoff_max_seconds = {backoff_max_seconds}
{_toml_keys(central_options)}
[reports.TTHC_RESULTS]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "D09"
period_type = "MONTH"
sources = ["onestop"]

[[sources]]
name = "onestop"
kind = "rest_onestop"
base_url = "{onestop_url}"
client_id_env = "{demo.CLIENT_ID_ENV}"
client_secret_env = "{demo.CLIENT_SECRET_ENV}"
{_toml_keys(source_options)}
[sources.fields]
code = "code"
agency_code = "agency_code"
""",
        encoding="utf-8",
    )
    return path


def _toml_keys(options: dict[str, Any] | None) -> str:
    """`key = value` lines of a TOML table (strings quoted, numbers and booleans as TOML spells them)."""
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in (options or {}).items())


def months(first: date, count: int) -> list[str]:
    """`count` consecutive month ids from `first`'s month on."""
    found = []
    year, month = first.year, first.month
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def load_dossiers(config: Config) -> None:
    """The hand-computed dossiers, aggregated and checked for the base period."""
    engine = pipeline.engine_for(config)
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.dossiers), DOSSIERS)
    pipeline.aggregate(config, REPORT, BASE_PERIOD)
    pipeline.validate_report(config, REPORT, BASE_PERIOD)


def copy_report_rows(config: Config, periods: Iterable[str]) -> None:
    """The base period's (sound, validated) stored report stored again under other periods, and marked
    validated as the base was, so that each period has a report to render: many distinct submissions
    without generating dossiers for each month."""
    engine = pipeline.engine_for(config)
    base = pipeline.validated_report(config, REPORT, BASE_PERIOD).report
    for period_id in periods:
        period = pipeline.period_of(config, REPORT, period_id)
        copy = Report(base.report_type, period, base.tables, base.completeness)
        digest = stored_reports.store(engine, copy, {"copied from": BASE_PERIOD}, warehouse.utc_now())
        stored_reports.mark_validated(engine, digest, warehouse.utc_now(), None)


def freeze_all(config: Config, periods: Iterable[str]) -> list[ledger.Submission]:
    frozen = []
    for period in periods:
        rendered = pipeline.render(config, REPORT, period)
        assert rendered.submission is not None and rendered.submission.state == ledger.State.FROZEN
        frozen.append(rendered.submission)
    return frozen


def ledger_rows(config: Config) -> list[ledger.Submission]:
    engine = pipeline.engine_for(config)
    return [ledger.get(engine, row["id"]) for row in ledger.listing(engine)]


def attempt_outcomes(config: Config, submission: int) -> list[str]:
    with pipeline.engine_for(config).connect() as connection:
        return list(
            connection.execute(
                sa.select(tables.submission_attempts.c.outcome)
                .where(tables.submission_attempts.c.submission == submission)
                .order_by(tables.submission_attempts.c.id)
            ).scalars()
        )


def run_cli(
    *arguments: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`baocao ...` as an operator runs it (the console script `uv run baocao` starts), in its own process."""
    command = [str(Path(sys.executable).with_name("baocao")), *arguments]
    # A wide console: rich would otherwise wrap the error message at 80 columns.
    environment = {**os.environ, **SECRETS_ENV, **(env or {}), "COLUMNS": "500"}
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        command, cwd=demo.PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class World:
    """A sandbox, a configuration and a warehouse with the base period's report rows."""

    folder: Path
    sandbox: Sandbox
    config_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)


def make_world(folder: Path, sandbox_settings: dict[str, Any] | None = None, **config: Any) -> Iterator[World]:
    sandbox = Sandbox(folder / "central.db", **(sandbox_settings or {}))
    try:
        config_path = write_config(folder, sandbox.base_url, **config)
        load_dossiers(load_config(config_path))
        yield World(folder, sandbox, config_path)
    finally:
        sandbox.stop()


@dataclass
class PullingWorld:
    """The one-stop-shop simulator as a process (dossiers to pull), the sandbox, and a configuration:
    what `baocao run` and the DAG need for a whole run."""

    env: demo.Environment
    sandbox: Sandbox
    config_path: Path

    def requests_at_sandbox(self) -> list[Arrival]:
        return [a for a in self.sandbox.arrivals if a.path.startswith("/api/v1")]


@contextlib.contextmanager
def pulling_world(folder: Path, volume: int = 1500, warehouse_url: str | None = None) -> Iterator[PullingWorld]:
    env_secrets = {
        demo.CENTRAL_TOKEN_ENV: TOKEN,
        demo.CLIENT_ID_ENV: "delivery-test",
        demo.CLIENT_SECRET_ENV: secrets.token_urlsafe(16),
    }
    saved = {name: os.environ.get(name) for name in env_secrets}
    os.environ.update(env_secrets)  # this process reads the same configuration
    env = demo.Environment(workdir=folder, secrets_env=env_secrets)
    sandbox = Sandbox(folder / "central.db")
    try:
        port = demo.free_port()
        env.start(
            "onestop-simulator",
            [
                "baocao.simulators.onestop",
                "--host=127.0.0.1",
                f"--port={port}",
                "--seed=11",
                f"--volume={volume}",
                f"--client-id={env_secrets[demo.CLIENT_ID_ENV]}",
                f"--client-secret={env_secrets[demo.CLIENT_SECRET_ENV]}",
                f"--registry-out={folder / 'agencies.csv'}",
            ],
            port,
        )
        env.config_path = write_config(
            folder,
            sandbox.base_url,
            fmt="json",
            onestop_url=f"http://127.0.0.1:{port}",
            write_registry=False,
            warehouse_url=warehouse_url,
        )
        yield PullingWorld(env, sandbox, env.config_path)
    finally:
        env.stop()
        sandbox.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
