"""Hostile world: poison records in a department system. A real `baocao run` pulls them, among good
dossiers, from a one-stop API on loopback; the run quarantines them, publishes the report (exit 0, as
any run with quarantined records), and no poison value reaches stdout, stderr or any file it wrote. The
same on SQLite and PostgreSQL (which refused the whole batch on a NUL or a field name over 500 characters).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.core import tables
from baocao.run import pipeline
from baocao.run.config import load_config
from tests.delivery.support import REPORT, SECRETS_ENV, Sandbox, run_cli, write_config
from tests.transforms.test_tthc_aggregation import DEPARTMENT

pytestmark = pytest.mark.hostile

NAME_POISON = "POISONNAME"
# What must never be written anywhere: the raw controls in codes, and the 10 MiB field name.
FORBIDDEN = (b"P-NUL\x00", b"P-ESC\x1b[31m", b"P-NL\nX", "P-RLO\u202eX".encode(), (NAME_POISON * 20).encode())


def dossier(code: str, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "code": code,
        "agency_code": DEPARTMENT,
        "procedure_code": "1.000001",
        "field_code": "LV-TUPHAP",
        "field_name": "Tư pháp",
        "channel": "ONLINE",
        "status": "RESOLVED",
        "received_at": "2026-10-20T09:00:00+07:00",
        "due_at": "2026-10-25T17:00:00+07:00",
        "finished_at": "2026-10-24T10:00:00+07:00",
        "updated_at": "2026-10-24T10:00:00+07:00",
        "digitized": True,
    }
    return {**base, **changes}


POISON = [
    dossier("P-9999", received_at="9999-12-31T23:59:59Z"),
    dossier("P-0001", updated_at="0001-01-01T00:00:00+08:00"),
    dossier("P-LONG", field_name=NAME_POISON * (2**20)),  # 10 MiB
    dossier("P-NUL\x00"),
    dossier("P-ESC\x1b[31m"),
    dossier("P-NL\nX"),
    dossier("P-RLO\u202eX"),
    ["not", "a", "record"],
]
GOOD = [dossier(f"GOOD-{n:03d}") for n in range(1, 6)]


class PoisonApi(BaseHTTPRequestHandler):
    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer({"access_token": "poison", "expires_in": 300})

    def do_GET(self) -> None:
        dossiers = [GOOD[0], *POISON, *GOOD[1:]]
        self._answer({"data": dossiers, "next_cursor": None} if "/dossiers" in self.path else {"data": []})

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def poison_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PoisonApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_poison_records_are_quarantined_and_the_report_publishes(
    tmp_path: Path, poison_api: str, monkeypatch: pytest.MonkeyPatch, warehouse_url: str
) -> None:
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)  # this process reads the same configuration
    sandbox = Sandbox(tmp_path / "central.db")
    try:
        config_path = write_config(
            tmp_path / "world", sandbox.base_url, onestop_url=poison_api, warehouse_url=warehouse_url
        )
        result = run_cli("run", "--report", REPORT, "--period", "2026-11", "--config", str(config_path), timeout=240)
    finally:
        sandbox.stop()
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert '"status": "accepted"' in result.stdout, shown

    config = load_config(config_path)
    with pipeline.engine_for(config).connect() as connection:
        quarantined = {
            (row.record_key, row.rule)
            for row in connection.execute(sa.select(tables.quarantine).where(tables.quarantine.c.stage == "extract"))
        }
        stored = set(connection.execute(sa.select(tables.dossiers.c.code)).scalars())
    assert stored == {entry["code"] for entry in GOOD}
    assert quarantined == {
        ("P-9999", "dossier.date_out_of_range"),
        ("P-0001", "dossier.date_out_of_range"),
        ("P-LONG", "dossier.text_too_long"),
        ("P-NUL\\x00", "dossier.control_character"),
        ("P-ESC\\x1b[31m", "dossier.control_character"),
        ("P-NL\\x0aX", "dossier.control_character"),
        ("P-RLO\\u202eX", "dossier.control_character"),
        ("record #9", "dossier.unknown_shape"),  # its position in the page (after GOOD-001)
    }
    # The log names each record (escaped) and its rule, and holds no poison; nor does any file written.
    assert "P-RLO\\u202eX" in result.stderr and "dossier.control_character" in result.stderr
    outputs = [result.stdout.encode(), result.stderr.encode()]
    outputs += [path.read_bytes() for path in (tmp_path / "world").rglob("*") if path.is_file()]
    for output in outputs:
        for poison in FORBIDDEN:
            assert poison not in output
