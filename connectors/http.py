"""HTTP calls with a timeout and a deadline on every try and bounded, jittered retries that honour Retry-After.

Shared by the department-system connectors and the central endpoint client. A call is retried on
connection faults, timeouts, bodies cut off mid-way or late, 429 and 502/503/504; anything else
returns to the caller, which decides what the status means. Every request carries a connect and a
read timeout (a caller cannot switch them off), so a server that accepts the connection and never
answers costs at most one timeout per try; and the body is read against the try's total deadline
(`RetryPolicy.deadline`), so a server that trickles a byte now and then cannot hold a worker either;
a watchdog shuts the try's socket at the deadline, so neither can one that trickles its headers (which
requests reads before handing the response over).
No pause between tries is longer than `RetryPolicy.max_wait_seconds`: a server asking for a longer
one (Retry-After) ends the call at once, retriable, with the time to come back.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
import urllib3
import urllib3.exceptions
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from baocao.core.errors import RetriableError
from baocao.core.settings import RetryPolicy

log = logging.getLogger(__name__)

RETRIABLE_STATUSES = frozenset({429, 502, 503, 504})
BODY_CHUNK_BYTES = 64 * 1024
T = TypeVar("T")


class TransientFault(Exception):
    """One failed try that may succeed if repeated."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# Workers told the same Retry-After would all come back in the same instant: each waits a little
# longer (up to this share of Retry-After, within the backoff cap) so that they arrive spread out.
RETRY_AFTER_SPREAD = 0.1


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter, never shorter than the server's Retry-After.

    The cap bounds our own backoff only: a server's Retry-After is always honoured in full, plus a
    small jitter of its own (RETRY_AFTER_SPREAD) so that many clients do not return together.
    """

    policy: RetryPolicy
    rng: random.Random

    def __call__(self, state: RetryCallState) -> float:
        ceiling = min(
            self.policy.backoff_max_seconds, self.policy.backoff_base_seconds * 2 ** (state.attempt_number - 1)
        )
        delay = self.rng.uniform(0, ceiling)
        fault = state.outcome.exception() if state.outcome else None
        if isinstance(fault, TransientFault) and fault.retry_after is not None:
            spread = self.rng.uniform(0, min(ceiling, RETRY_AFTER_SPREAD * fault.retry_after))
            delay = max(delay, fault.retry_after + spread)
            # The spread never takes a pause past max_wait_seconds; Retry-After itself is never cut.
            return max(fault.retry_after, min(delay, self.policy.max_wait_seconds))
        return min(delay, self.policy.max_wait_seconds)


def _asks_too_long_a_pause(fault: BaseException | None, policy: RetryPolicy) -> bool:
    return (
        isinstance(fault, TransientFault)
        and fault.retry_after is not None
        and fault.retry_after > policy.max_wait_seconds
    )


@dataclass
class _ServerWantsALongPause(stop_base):
    """A server asking to wait longer than max_wait_seconds is down for now: the call gives up at once,
    retriable, and the task's own retry (or the operator, at the time the message names) takes over."""

    policy: RetryPolicy

    def __call__(self, state: RetryCallState) -> bool:
        return _asks_too_long_a_pause(state.outcome.exception() if state.outcome else None, self.policy)


def _come_back_after(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


# The try in progress on this thread, so the connection pools can tell its watchdog which connection it got.
_TRY = threading.local()
# The watchdog fires this long after the deadline: a body read checks the deadline itself, and says so.
_WATCHDOG_GRACE_SECONDS = 0.2


class _Watchdog:
    """Shuts a try's socket when the try outlives its deadline, waking a read blocked in the headers."""

    def __init__(self, seconds: float) -> None:
        self.connection: Any = None  # the urllib3 connection the try got from its pool
        self.fired = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        self.fired = True
        sock = getattr(self.connection, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed: nothing is waiting on it
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        _TRY.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        _TRY.watchdog = None


class _WatchedPool(urllib3.HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        watchdog = getattr(_TRY, "watchdog", None)
        if watchdog is not None:
            watchdog.connection = connection
        return connection


class _WatchedHttpsPool(urllib3.HTTPSConnectionPool):
    _get_conn = _WatchedPool._get_conn


def _watched(session: requests.Session) -> requests.Session:
    """The session, its HTTP(S) adapters' pools telling the try's watchdog which connection it uses."""
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHttpsPool}
    return session


class HttpClient:
    """A requests session with the retry policy of one remote system."""

    def __init__(
        self,
        system: str,
        policy: RetryPolicy,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.system = system
        self.policy = policy
        self.session = _watched(session or requests.Session())
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.waits: list[float] = []  # every backoff actually slept, for the operator's log and the tests

    def call(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        what: str,
        **kwargs: Any,
    ) -> T:
        """Send the request and `read` the response, retrying transient faults within the budget.

        `read` may raise TransientFault itself (for example on a body cut off mid-way).
        """
        tries = 0

        def one_try() -> T:
            nonlocal tries
            tries += 1
            return self._once(method, url, read, **kwargs)

        def before_sleep(state: RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            fault = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s: %s failed (try %d of %d: %s); retrying in %.2f s",
                self.system,
                what,
                state.attempt_number,
                self.policy.max_attempts,
                fault,
                delay,
            )
            self.waits.append(delay)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientFault),
            stop=stop_after_attempt(self.policy.max_attempts) | _ServerWantsALongPause(self.policy),
            wait=Backoff(self.policy, self.rng),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(one_try)
        except TransientFault as fault:
            if fault.retry_after is not None and _asks_too_long_a_pause(fault, self.policy):
                raise RetriableError(
                    f"{self.system}: {what}: {fault}, Retry-After {fault.retry_after:.0f} s, longer than this "
                    f"run waits (max_wait_seconds = {self.policy.max_wait_seconds:g}); "
                    f"try again after {_come_back_after(fault.retry_after)}",
                    retry_after=fault.retry_after,
                ) from fault
            raise RetriableError(
                f"{self.system}: {what} still failing after {tries} tries: {fault}",
                retry_after=fault.retry_after,
            ) from fault

    def _once(self, method: str, url: str, read: Callable[[requests.Response], T], **kwargs: Any) -> T:
        deadline = time.monotonic() + self.policy.deadline
        # (connect, read): a caller may shorten them, never remove them (requests waits forever on None).
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self.policy.timeout_seconds, self.policy.timeout_seconds)
        with _Watchdog(self.policy.deadline + _WATCHDOG_GRACE_SECONDS) as watchdog:
            try:
                # The body is read here, against the deadline, not by requests (which only times each read).
                response = self.session.request(method, url, stream=True, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as error:
                if watchdog.fired:
                    raise TransientFault("answer not complete by the deadline (still in its headers)") from error
                raise TransientFault(f"{type(error).__name__}: {error}") from error
            with response:
                read_body_by(response, deadline, self.policy)
        if response.status_code in RETRIABLE_STATUSES:
            raise TransientFault(f"HTTP {response.status_code}", retry_after_seconds(response))
        return read(response)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket a streamed response reads from, to shorten its timeout as the deadline nears: the
    connection's while it is kept alive, else the one http.client's response holds (a connection that
    closes after the answer has handed it over). None if neither is there (the deadline is then checked
    between reads only)."""
    candidates = (
        getattr(getattr(response.raw, "connection", None), "sock", None),
        getattr(getattr(getattr(getattr(response.raw, "_fp", None), "fp", None), "raw", None), "_sock", None),
    )
    return next((sock for sock in candidates if isinstance(sock, socket.socket)), None)


def read_body_by(response: requests.Response, deadline: float, policy: RetryPolicy) -> bytes:
    """Read a streamed response's whole body before the monotonic `deadline`, and keep it on the response
    (`.content`, `.json()` then work as usual); a body late or cut off is a TransientFault."""
    body = bytearray()
    for chunk in body_chunks(response, deadline, policy.timeout_seconds):
        body += chunk
    response._content = bytes(body)  # what requests' own .content does once the stream is read
    response._content_consumed = True  # type: ignore[attr-defined]
    return response._content


def body_chunks(response: requests.Response, deadline: float, timeout: float) -> Iterator[bytes]:
    """A streamed response's body as it arrives, ending by the monotonic `deadline` at the latest: a
    body late or cut off is a TransientFault.

    Each read takes what has arrived (at most one receive), and the socket waits no longer than the time
    left, so a server sending one byte every few seconds is cut at the deadline, not after the body.
    """
    sock = _socket_of(response)
    received = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientFault(f"answer not complete by the deadline ({received} bytes of body by then)")
            if sock is not None:
                try:
                    sock.settimeout(min(timeout, left))
                except OSError:
                    sock = None  # closed once the whole body was in: nothing more to wait for
            chunk = response.raw.read1(BODY_CHUNK_BYTES, decode_content=True)
            if not chunk:
                return
            received += len(chunk)
            yield chunk
    except (TimeoutError, urllib3.exceptions.ReadTimeoutError) as error:
        late = "deadline" if deadline - time.monotonic() <= 0 else "read timeout"
        raise TransientFault(f"answer not complete by the {late} ({received} bytes of body by then)") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        # The body was cut off mid-way (fewer bytes than Content-Length, a broken chunk, a reset). Like a
        # timeout, the server may have acted on the request: retrying is safe because every call made
        # through this client is (GETs, the token request, POSTs with an Idempotency-Key).
        raise TransientFault(f"answer cut off mid-body: {type(error).__name__}: {error}") from error


def read_json(response: requests.Response) -> Any:
    """The JSON body; a body cut off mid-way is a transient fault (the same page is asked again)."""
    try:
        return response.json()
    except (ValueError, requests.exceptions.ChunkedEncodingError) as error:
        raise TransientFault(f"incomplete or invalid JSON body (HTTP {response.status_code})") from error
