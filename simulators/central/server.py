"""Running the central sandbox: in a background thread for tests, or in the foreground (CLI).

``python -m simulators.central --port 8766 --database-url sqlite:///var/central.sqlite3
--sender TOKEN=000.00.00.H99`` prints the base URL and serves until SIGTERM/SIGINT. With
``--workers N`` several processes serve one socket and share the database. ``--sender-certificate
000.00.00.H99=cert.pem --signature-required 000.00.00.H99`` pins a sender's certificate and makes
it sign.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, cast

import requests
import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from baocao.simulators.central.app import create_app
from baocao.simulators.central.service import API_BASE_PATH
from baocao.simulators.central.settings import DEFAULT_DATABASE_URL, FAULT_MODES, FaultMode, Settings
from baocao.simulators.central.signatures import SignatureVerifier

SETTINGS_ENVIRONMENT_VARIABLE: Final = "CENTRAL_SANDBOX_SETTINGS"
_STARTUP_TIMEOUT_SECONDS: Final = 15.0


class RunningSandbox:
    """A sandbox serving on loopback in a daemon thread; a context manager that stops it on exit."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket) -> None:
        self._server = server
        self._thread = thread
        self._socket = sock
        host, port = sock.getsockname()[:2]
        self.root_url = f"http://{host}:{port}"
        self.base_url = self.root_url + API_BASE_PATH

    def set_mode(
        self,
        mode: FaultMode | None = None,
        *,
        retry_after: int | None = None,
        overload_share: float | None = None,
        processing_delay: float | None = None,
        admin_token: str | None = None,
    ) -> None:
        """Change fault injection through the admin endpoint (affects every worker on the database)."""
        wanted = {
            "mode": mode,
            "retry_after": retry_after,
            "overload_share": overload_share,
            "processing_delay": processing_delay,
        }
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        response = requests.post(
            self.root_url + "/_sandbox/mode",
            json={key: value for key, value in wanted.items() if value is not None},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _loopback_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)  # worker processes serve the same socket
    return sock


def start_in_thread(settings: Settings, verifier: SignatureVerifier | None = None) -> RunningSandbox:
    """Serve the sandbox on 127.0.0.1 on a free port in a background thread; returns once it accepts."""
    app = create_app(settings, verifier)
    sock = _loopback_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="central-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the central sandbox did not start")
        time.sleep(0.01)
    return RunningSandbox(server, thread, sock)


def create_app_from_environment() -> FastAPI:
    """App factory for worker processes: settings come from ``CENTRAL_SANDBOX_SETTINGS`` (JSON)."""
    return create_app(Settings.from_json(os.environ[SETTINGS_ENVIRONMENT_VARIABLE]))


def _parse_sender(value: str) -> tuple[str, str]:
    token, separator, sender = value.partition("=")
    if not separator or not token or not sender:
        raise argparse.ArgumentTypeError("expected TOKEN=AGENCY_CODE")
    return token, sender


def _parse_certificate(value: str) -> tuple[str, str]:
    sender, separator, path = value.partition("=")
    if not separator or not sender or not path:
        raise argparse.ArgumentTypeError("expected AGENCY_CODE=CERTIFICATE.pem")
    try:
        return sender, Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"cannot read the certificate of sender {sender}: {error}") from None


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.central", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--database-schema", default=None, help="PostgreSQL schema for the tables")
    parser.add_argument(
        "--sender", type=_parse_sender, action="append", default=[], metavar="TOKEN=CODE",
        help="a bearer token and the sender agency code it belongs to (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--signature-required", action="append", default=[], metavar="CODE",
        help="sender code that must sign (needs --sender-certificate for it; repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--sender-certificate", type=_parse_certificate, action="append", default=[], metavar="CODE=PEMFILE",
        help="the sender's pinned X.509 certificate (PEM), the only one its signatures are checked with",
    )  # fmt: skip
    parser.add_argument("--processing-delay", type=float, default=0.0, help="seconds per new submission")
    parser.add_argument("--mode", choices=FAULT_MODES, default="normal")
    parser.add_argument("--retry-after", type=int, default=2)
    parser.add_argument("--overload-share", type=float, default=1.0)
    parser.add_argument("--admin-token", default=None, help="protects /_sandbox/mode when given")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in the foreground until SIGTERM/SIGINT; prints the base URL first."""
    arguments = _argument_parser().parse_args(argv)
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings(
            database_url=arguments.database_url,
            database_schema=arguments.database_schema,
            tokens=dict(arguments.sender),
            signature_required={code: True for code in arguments.signature_required},
            certificates=dict(arguments.sender_certificate),
            processing_delay=arguments.processing_delay,
            fault_mode=cast(FaultMode, arguments.mode),
            retry_after=arguments.retry_after,
            overload_share=arguments.overload_share,
            admin_token=arguments.admin_token,
        )
    except ValueError as error:  # e.g. a sender that must sign without a registered certificate
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not settings.tokens:
        print("warning: no --sender TOKEN=CODE given; every request will get 401", file=sys.stderr)
    sock = _loopback_socket(arguments.host, arguments.port)
    host, port = sock.getsockname()[:2]
    common = {"log_level": arguments.log_level, "lifespan": "on", "timeout_graceful_shutdown": 10}
    if arguments.workers > 1:
        create_app(settings).state.service.storage.dispose()  # tables exist before workers race to create them
        os.environ[SETTINGS_ENVIRONMENT_VARIABLE] = settings.to_json()
        config = uvicorn.Config(
            "baocao.simulators.central.server:create_app_from_environment",
            factory=True,
            workers=arguments.workers,
            **common,
        )
        print(f"http://{host}:{port}{API_BASE_PATH}", flush=True)
        Multiprocess(config, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **common))

    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the previous
    # handler; a quiet handler makes that a clean exit (status 0) instead of a kill or a traceback.
    def _quiet(_signal: int, _frame: FrameType | None) -> None:
        return None

    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, _quiet)
    print(f"http://{host}:{port}{API_BASE_PATH}", flush=True)
    server.run(sockets=[sock])
    sock.close()
    return 0
