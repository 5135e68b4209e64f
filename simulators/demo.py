"""The demo and the end-to-end tests' environment: simulators on loopback, a config, a real DAG run.

Everything lives in one work folder: the generated agency registry, the configuration file, the
warehouse (SQLite), the sandbox's database, Airflow's home, the Data Docs and the rendered payloads.
The demo signs: it makes the province a key and a self-signed certificate (``signing/``), pins the
certificate at the sandbox and has the sandbox require signatures from the demo sender.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from baocao.core.errors import FatalError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
DEMO_SENDER = "000.00.00.H99"
DEMO_SENDER_NAME = "UBND tỉnh Mẫu"
CLIENT_ID_ENV = "BAOCAO_DEMO_ONESTOP_CLIENT_ID"
CLIENT_SECRET_ENV = "BAOCAO_DEMO_ONESTOP_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
CENTRAL_TOKEN_ENV = "BAOCAO_DEMO_CENTRAL_TOKEN"  # noqa: S105 - the variable's name, not a secret
SIGNING_KEY_ENV = "BAOCAO_DEMO_SIGNING_KEY"  # the path of the demo's private key (PEM)
SIGNING_CERT_ENV = "BAOCAO_DEMO_SIGNING_CERT"  # the path of its self-signed certificate (PEM)


def write_signing_identity(folder: Path, days: int = 30) -> tuple[Path, Path]:
    """A fresh ECDSA P-256 key and a self-signed certificate for the demo sender: (key path, cert path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_SENDER_NAME),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{DEMO_SENDER} demo signing"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FatalError(f"{what} exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise FatalError(f"{what} did not listen on port {port} within {seconds:.0f} s; see {log_path}")


@dataclass
class Environment:
    """A work folder with running simulators and a configuration that points at them."""

    workdir: Path
    secrets_env: dict[str, str]
    onestop_url: str = ""
    central_url: str = ""
    config_path: Path = Path()
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.secrets_env, "BAOCAO_CONFIG": str(self.config_path)}

    def airflow_env(self) -> dict[str, str]:
        home = self.workdir / "airflow"
        return {
            **self.env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])),
        }

    def start(self, name: str, args: list[str], port: int) -> None:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("wb")
        self.logs.append(log_file)
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        wait_for_port(port, process, name, log_path)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for log_file in self.logs:
            log_file.close()
        self.processes.clear()
        self.logs.clear()


def write_config(
    path: Path,
    *,
    onestop_url: str,
    central_url: str,
    fmt: str = "xml",
    retry: Mapping[str, float] | None = None,
    signing: bool = False,
) -> None:
    retry_lines = "".join(f"{key} = {value}\n" for key, value in (retry or {}).items())
    signing_lines = (
        f'signing_key_env = "{SIGNING_KEY_ENV}"\nsigning_cert_env = "{SIGNING_CERT_ENV}"\n' if signing else ""
    )
    path.write_text(
        f"""# Written by `baocao demo`: the simulated department system and the sandbox central endpoint.
[province]
code = "{DEMO_SENDER}"
name = "{DEMO_SENDER_NAME}"

[paths]
data_dir = "var"

[warehouse]
url = "sqlite:///var/warehouse.db"

[registry]
agencies = "agencies.csv"

[central]
url = "{central_url}"
token_env = "{CENTRAL_TOKEN_ENV}"
format = "{fmt}"
timeout_seconds = 20
{signing_lines}{retry_lines}
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
client_id_env = "{CLIENT_ID_ENV}"
client_secret_env = "{CLIENT_SECRET_ENV}"
page_size = 500
overlap_minutes = 60
timeout_seconds = 20
{retry_lines}
# The vendor's field names are the canonical ones; another vendor maps its own names here.
[sources.fields]
code = "code"
agency_code = "agency_code"
""",
        encoding="utf-8",
    )


@contextlib.contextmanager
def environment(
    workdir: Path,
    *,
    volume: int = 20_000,
    seed: int = 7,
    fmt: str = "xml",
    onestop_args: tuple[str, ...] = (),
    central_args: tuple[str, ...] = (),
    fresh: bool = True,
    signed: bool = True,
) -> Iterator[Environment]:
    """Start the one-stop-shop simulator and the central sandbox on loopback, and write the config.

    ``signed``: the sandbox requires signatures from the demo sender and pins a fresh certificate,
    and the configuration names the matching key."""
    if fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    secrets_env = {
        CLIENT_ID_ENV: "demo-client",
        CLIENT_SECRET_ENV: secrets.token_urlsafe(16),
        CENTRAL_TOKEN_ENV: secrets.token_urlsafe(24),
    }
    signing_args: list[str] = []
    if signed:
        key_path, cert_path = write_signing_identity(workdir / "signing")
        secrets_env[SIGNING_KEY_ENV] = str(key_path)
        secrets_env[SIGNING_CERT_ENV] = str(cert_path)
        signing_args = [f"--signature-required={DEMO_SENDER}", f"--sender-certificate={DEMO_SENDER}={cert_path}"]
    env = Environment(workdir=workdir, secrets_env=secrets_env)
    # This process reads the same configuration after the DAG run, so it needs the same variables.
    saved = {name: os.environ.get(name) for name in secrets_env}
    os.environ.update(secrets_env)
    try:
        onestop_port, central_port = free_port(), free_port()
        env.start(
            "onestop-simulator",
            [
                "baocao.simulators.onestop",
                "--host",
                "127.0.0.1",
                "--port",
                str(onestop_port),
                "--seed",
                str(seed),
                "--volume",
                str(volume),
                # `--option=value`: a random secret may begin with "-".
                f"--client-id={secrets_env[CLIENT_ID_ENV]}",
                f"--client-secret={secrets_env[CLIENT_SECRET_ENV]}",
                "--registry-out",
                str(workdir / "agencies.csv"),
                # The vendor quirks and a share of faults, so that the demo shows the connector coping.
                "--naive-time-share",
                "0.2",
                "--nfd-field-name-share",
                "0.2",
                "--fault-429",
                "0.05",
                "--fault-503",
                "0.05",
                "--fault-truncated",
                "0.02",
                "--retry-after",
                "1",
                *onestop_args,
            ],
            onestop_port,
        )
        env.start(
            "central-sandbox",
            [
                "baocao.simulators.central",
                "--host",
                "127.0.0.1",
                "--port",
                str(central_port),
                "--database-url",
                f"sqlite:///{workdir / 'central-sandbox.db'}",
                f"--sender={secrets_env[CENTRAL_TOKEN_ENV]}={DEMO_SENDER}",
                *signing_args,
                *central_args,
            ],
            central_port,
        )
        env.onestop_url = f"http://127.0.0.1:{onestop_port}"
        env.central_url = f"http://127.0.0.1:{central_port}/api/v1"
        env.config_path = workdir / "baocao.toml"
        write_config(env.config_path, onestop_url=env.onestop_url, central_url=env.central_url, fmt=fmt, signing=signed)
        yield env
    finally:
        env.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def airflow_dags_test(env: Environment, dag_id: str, logical_date: datetime | date, conf: Mapping[str, str]) -> int:
    """Run one DAG for real with `airflow dags test` (scheduler-free, in this machine's Python)."""
    airflow = [sys.executable, "-m", "airflow"]
    airflow_env = env.airflow_env()
    log_path = env.workdir / "airflow-run.log"
    with log_path.open("wb") as log_file:
        migrate = subprocess.run(
            [*airflow, "db", "migrate"], env=airflow_env, stdout=log_file, stderr=subprocess.STDOUT, check=False
        )  # noqa: S603
        if migrate.returncode != 0:
            raise FatalError(f"airflow db migrate failed; see {log_path}")
        run = subprocess.run(  # noqa: S603 - fixed arguments
            [*airflow, "dags", "test", dag_id, logical_date.isoformat(), "-c", json.dumps(dict(conf))],
            env=airflow_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return run.returncode
