"""A loopback HTTP server in a thread that answers as a test tells it to, misbehaving included (a body
trickled a byte at a time, a Retry-After of an hour, a 201 that is no receipt), and notes when each
request arrived, so a test can bound what the client did from the server's side."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Answer = Callable[[BaseHTTPRequestHandler], None]


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


@dataclass
class Served:
    url: str
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, path) of each request

    def since_first_request(self) -> float:
        return time.monotonic() - self.arrivals[0][0]


@contextlib.contextmanager
def serving(answer: Answer) -> Iterator[Served]:
    """A loopback HTTP server whose every request `answer` handles (the body read first)."""
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            served.arrivals.append((time.monotonic(), urlsplit(self.path).path))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                answer(self)

        do_GET = do_POST = _any

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def trickle(handler: BaseHTTPRequestHandler, body: bytes, gap_seconds: float, count: int) -> None:
    """A 200 announcing `body`'s length, then its first `count` bytes one at a time, `gap_seconds` apart."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for byte in body[:count]:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(gap_seconds)
