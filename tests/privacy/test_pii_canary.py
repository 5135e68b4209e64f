"""Personal data never leaves: the applicants the department system serves (names, ID numbers, phones,
addresses) are the canaries. After a real DAG run (TTHC_RESULTS) and CLI runs of the two other
dossier-based reports (ONLINE_SERVICES, SERVICE_INDEX), none of them is found in any payload (our
files and the central's stored copies), any log (Airflow's task logs, the run's output, the
simulators'), XCom, or any table of the warehouse."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa

from baocao.connectors.rest_onestop import OneStopClient
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import parse_period
from baocao.run.config import load_config
from baocao.simulators import demo

PERIOD = parse_period("2026-10")
QUARTER = "2026-Q3"
EXTRA_REPORTS = """
[reports.ONLINE_SERVICES]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "D09"
period_type = "MONTH"
sources = ["onestop"]

[reports.SERVICE_INDEX]
receiver_code = "000.00.00.G01"
receiver_name = "Văn phòng Chính phủ"
regime = "CALENDAR"
period_type = "QUARTER"
sources = ["onestop"]
"""


def _canaries(env: demo.Environment) -> set[str]:
    """Every applicant's name, ID number, phone and address that the simulator serves."""
    config = load_config(env.config_path)
    client = OneStopClient(config.source("onestop"))
    found: set[str] = set()
    for record in client.dossiers(None, datetime.now(LOCAL_TIMEZONE)):
        applicant = record.get("applicant") or {}
        for key in ("name", "id_number", "phone", "address"):
            value = applicant.get(key)
            if isinstance(value, str) and len(value) >= 6:
                found.add(unicodedata.normalize("NFC", value))
    return found


def _forms(needle: str) -> list[bytes]:
    """The byte forms a value may take when written: UTF-8 NFC and NFD, JSON's \\u escapes."""
    forms = {needle.encode(), unicodedata.normalize("NFD", needle).encode()}
    forms.add(json.dumps(needle).strip('"').encode())
    forms.add(json.dumps(unicodedata.normalize("NFD", needle)).strip('"').encode())
    return sorted(forms)


def _scan(haystacks: Iterable[tuple[str, bytes]], canaries: set[str]) -> list[str]:
    needles = [(canary, form) for canary in canaries for form in _forms(canary)]
    leaks = []
    for where, data in haystacks:
        for canary, form in needles:
            if form in data:
                leaks.append(f"{where}: {canary[:3]}…")
                break
    return leaks


def _files(root: Path, suffixes: tuple[str, ...] | None = None) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and (suffixes is None or path.suffix in suffixes):
            yield str(path.relative_to(root)), path.read_bytes()


def _as_bytes(value: object) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _sqlite_rows(database: Path) -> Iterator[tuple[str, bytes]]:
    """Every text or blob value of every table, one haystack per table."""
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            values = bytearray()
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the catalogue
                for value in row:
                    if isinstance(value, bytes):
                        values += value + b"\n"
                    elif value is not None:
                        values += str(value).encode() + b"\n"
            yield f"{database.name}:{table}", bytes(values)


def test_no_applicant_data_in_payloads_logs_xcom_or_warehouse(tmp_path: Path) -> None:
    cut_off = datetime.combine(PERIOD.end + timedelta(days=1), time(2, 0), tzinfo=LOCAL_TIMEZONE)
    with demo.environment(tmp_path / "work", volume=1500, fmt="json") as env:
        with env.config_path.open("a", encoding="utf-8") as config_file:
            config_file.write(EXTRA_REPORTS)
        canaries = _canaries(env)
        assert len(canaries) > 1000, len(canaries)  # the simulator does serve personal data

        conf = {"config": str(env.config_path)}
        code = demo.airflow_dags_test(env, "tthc_results", cut_off, conf)
        assert code == 0, (env.workdir / "airflow-run.log").read_text()
        outputs = []
        for report, period in (("ONLINE_SERVICES", PERIOD.id), ("SERVICE_INDEX", QUARTER)):
            run = subprocess.run(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "baocao.cli", "-v", "run", "--report", report, "--period", period],
                env=env.env,
                capture_output=True,
                check=False,
                timeout=900,
            )
            assert run.returncode == 0, run.stderr.decode()[-3000:]
            outputs.append((f"baocao run {report} (stdout+stderr)", run.stdout + run.stderr))

        config = load_config(env.config_path)
        warehouse_file = Path(sa.engine.make_url(config.warehouse_url).database or "")
        if not warehouse_file.is_absolute():
            warehouse_file = env.config_path.parent / warehouse_file
        airflow_db = env.workdir / "airflow" / "airflow.db"
        with sqlite3.connect(airflow_db) as connection:
            xcom = [
                (f"xcom {key}", _as_bytes(value)) for key, value in connection.execute("SELECT key, value FROM xcom")
            ]
        haystacks = [
            *_files(config.data_dir / "submissions"),  # every payload we rendered, frozen or dry run
            *_sqlite_rows(env.workdir / "central-sandbox.db"),  # what the central stored
            *_files(env.workdir / "airflow" / "logs"),  # Airflow's task logs
            ("airflow-run.log", (env.workdir / "airflow-run.log").read_bytes()),
            *[(f"{name}.log", (env.workdir / f"{name}.log").read_bytes()) for name in ("central-sandbox",)],
            *outputs,
            *xcom,
            *_sqlite_rows(warehouse_file),  # dossiers, quarantine, report rows, ledger
            *_files(config.data_dir, (".html", ".json")),  # Data Docs and validation results
        ]
        # The scanner is not blind: a canary planted in each form it may be written in is found.
        sample = max(canaries, key=len)
        planted = [("planted", b"x " + form + b" y") for form in _forms(sample)]
        assert len(_scan(planted, canaries)) == len(planted)
        leaks = _scan(haystacks, canaries)
        scanned = sum(len(data) for _, data in haystacks)
        print(
            f"\n{len(canaries):,} canaries (names, ID numbers, phones, addresses) × {len(haystacks):,} places "
            f"({scanned / 1024 / 1024:.1f} MiB: payloads, central copies, logs, {len(xcom)} XComs, warehouse "
            f"tables, Data Docs): {len(leaks)} found"
        )
        assert xcom, "the DAG run left no XCom to scan"
        assert leaks == []
