"""A PostgreSQL warehouse that goes away in the middle of a run (issue 13, item 4: a database that is
down is retriable). The run reaches the warehouse through a loopback TCP proxy; the department's API
cuts the proxy (every connection closed, the port refusing) when the run asks for its first page, so the
warehouse is gone between the pull and what extract writes next. The run must end with one retriable
line, never a traceback, and the password in the URL shown nowhere.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.delivery.support import BASE_PERIOD, REPORT, run_cli, write_config
from tests.hostile.support import one_line_failure
from tests.hostile.test_servers import DOSSIER, QUICK, onestop
from tests.loopback import send_json, serving

pytestmark = pytest.mark.hostile

CANARY_PASSWORD = "canary-pw-7f3a"


class Proxy:
    """Forwards loopback connections to PostgreSQL until `cut`: then closes them all and refuses more."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cut_done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_done.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_done.is_set():  # accepted as the cut came: refused like the rest
                client.close()
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.cut_done.set()
        # Shut first: a close alone leaves the port listening while another thread waits in accept().
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.fixture
def database_with_password(postgres_admin_url: str) -> Iterator[sa.URL]:
    """A role with a password (the canary) owning a schema of its own in the test database."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    role = "baocao_outage"
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {role} CASCADE"))
        connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        connection.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{CANARY_PASSWORD}'"))
        connection.execute(sa.text(f"CREATE SCHEMA {role} AUTHORIZATION {role}"))
    url = sa.make_url(postgres_admin_url).set(username=role, password=CANARY_PASSWORD)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {role} CASCADE"))
            connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_a_warehouse_gone_in_the_middle_of_a_run_is_one_retriable_line(
    tmp_path: Path, database_with_password: sa.URL
) -> None:
    url = database_with_password
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))

    def first_page_cuts_the_warehouse(handler: BaseHTTPRequestHandler) -> None:
        proxy.cut()
        send_json(handler, 200, {"data": [DOSSIER]})

    with serving(onestop(first_page_cuts_the_warehouse)) as served:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        config = write_config(
            tmp_path,
            "http://127.0.0.1:9/api/v1",
            warehouse_url=through_proxy,
            onestop_url=served.url,
            source_options={"timeout_seconds": 5, **QUICK},
        )
        result = run_cli(
            "run", "--report", REPORT, "--period", BASE_PERIOD, "--config", str(config), "--dry-run", timeout=180
        )
    assert proxy.cut_done.is_set(), "the run never asked for a page: the warehouse was not cut mid-run"
    line = one_line_failure(result, "retriable")
    assert "warehouse" in line and "try again when it answers" in line, line
    assert CANARY_PASSWORD not in result.stdout + result.stderr
