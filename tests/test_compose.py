"""docker-compose.yml: parsed and checked, and its simulator services run natively (no Docker engine here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from baocao.simulators.demo import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def test_every_dependency_exists_and_the_graph_has_no_cycle() -> None:
    graph = {name: set((service.get("depends_on") or {}).keys()) for name, service in SERVICES.items()}
    assert all(deps <= graph.keys() for deps in graph.values())
    order: list[str] = []
    while graph:
        ready = sorted(name for name, deps in graph.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(graph)}"
        order.extend(ready)
        for name in ready:
            del graph[name]
    assert order.index("postgres") < order.index("airflow-init") < order.index("airflow-scheduler")


def test_built_services_run_our_entry_points() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["command"][0] in {"baocao", "airflow"}, name
            assert shutil.which(service["command"][0], path=str(Path(sys.executable).parent)), name


def _native(command: list[str], replacements: dict[str, str]) -> list[str]:
    out = []
    for word in command:
        for old, new in replacements.items():
            word = word.replace(old, new)
        out.append(word)
    return [str(Path(sys.executable).parent / out[0]), *out[1:]]


@pytest.mark.parametrize("service", ["onestop-simulator", "central-sandbox"])
def test_simulator_services_start_natively_from_their_compose_command(
    service: str, tmp_path: Path, postgres_url: str
) -> None:
    port = free_port()
    published = SERVICES[service]["ports"][0].split(":")[1]
    replacements = {
        "0.0.0.0": "127.0.0.1",  # noqa: S104 - the compose value being replaced by loopback
        published: str(port),
        "${BAOCAO_ONESTOP_CLIENT_SECRET}": "compose-secret",
        "${BAOCAO_CENTRAL_TOKEN}": "compose-token",
        "/app/config": str(tmp_path),
        "postgresql+psycopg://airflow:airflow@postgres:5432/central": postgres_url,
    }
    command = _native(SERVICES[service]["command"], replacements)
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))  # noqa: S603
        try:
            wait_for_port(port, process, service, log_path, seconds=120)
            if service == "onestop-simulator":
                token = requests.post(
                    f"http://127.0.0.1:{port}/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "demo-client",
                        "client_secret": "compose-secret",
                    },
                    timeout=10,
                )
                assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
                assert (tmp_path / "agencies.csv").is_file()
            else:
                listing = requests.get(
                    f"http://127.0.0.1:{port}/api/v1/submissions",
                    params={"report_type": "TTHC_RESULTS", "period": "2026-11"},
                    headers={"Authorization": "Bearer compose-token"},
                    timeout=10,
                )
                assert listing.status_code == 200
                assert requests.get(f"http://127.0.0.1:{port}/api/v1/submissions/x", timeout=10).status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=20)
