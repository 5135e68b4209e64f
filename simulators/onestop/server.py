"""REST server simulating a province's one-stop-shop system (department-systems.md §1).

OAuth client-credentials tokens, cursor-paged dossiers by `updated_at` window, procedures, and the
real systems' quirks: a simulated clock (records re-appear when they change), late commits (a
version becomes visible some seconds after its `updated_at`), times without offset, decomposed
Unicode, and injected faults (429, 503, slow answers, pages cut off mid-body).

Never logs request bodies or records: dossiers carry applicants' personal data.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import json
import logging
import math
import os
import random
import secrets
import signal
import socket
import sys
import threading
import time
import unicodedata
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import numpy.typing as npt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from baocao.simulators.onestop.generator import (
    LAM_DONG_2019,
    LAM_DONG_2019_PERIOD_END,
    LAM_DONG_2019_PERIOD_START,
    Dataset,
    generate,
    generate_calibrated,
    write_registry_csv,
)
from baocao.simulators.onestop.records import LOCAL_TIMEZONE, Dossier, Procedure

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
# A clock cut-off later than any version: everything visible.
END_OF_DATA = 2**62
MAX_LIMIT = 1000
# How many clock positions keep their dossier view cached (tests move the clock back and forth).
VIEW_CACHE_SIZE = 8
CLIENT_ID_ENV = "ONESTOP_SIMULATOR_CLIENT_ID"
CLIENT_SECRET_ENV = "ONESTOP_SIMULATOR_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
# uvicorn reports a response the app left unfinished; the simulator does that on purpose.
_UNFINISHED_RESPONSE_MESSAGE = "ASGI callable returned without completing response."


class Endpoint(StrEnum):
    TOKEN = "token"  # noqa: S105 - an endpoint's name
    DOSSIERS = "dossiers"
    PROCEDURES = "procedures"


class TruncationStyle(StrEnum):
    # Content-Length promises the whole page, half is sent, the connection closes: IncompleteRead.
    INCOMPLETE_READ = "incomplete_read"
    # A proxy cut the page and fixed Content-Length: a complete HTTP answer with half a JSON document.
    INVALID_JSON = "invalid_json"


@dataclass(frozen=True)
class Faults:
    """Failures injected per request at random (seeded): each share is a probability in [0, 1]."""

    too_many_requests_share: float = 0.0
    unavailable_share: float = 0.0
    slow_share: float = 0.0
    truncated_share: float = 0.0
    retry_after_seconds: int = 1
    slow_seconds: float = 2.0
    seed: int = 0
    endpoints: frozenset[Endpoint] = frozenset({Endpoint.DOSSIERS})
    unavailable_statuses: tuple[int, ...] = (503,)
    truncation_styles: tuple[TruncationStyle, ...] = (TruncationStyle.INCOMPLETE_READ, TruncationStyle.INVALID_JSON)

    def __post_init__(self) -> None:
        for name in ("too_many_requests_share", "unavailable_share", "slow_share", "truncated_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.retry_after_seconds < 0 or self.slow_seconds < 0:
            raise ValueError("retry_after_seconds and slow_seconds must not be negative")
        if not self.unavailable_statuses or not self.truncation_styles:
            raise ValueError("unavailable_statuses and truncation_styles must not be empty")


@dataclass(frozen=True)
class Dialect:
    """Another vendor's dialect of the same API: its field names (dotted paths nest) and its words.

    `field_names` maps a contract field to the vendor's path; `words` maps a contract field to
    {contract word → vendor word}. Fields not named keep the contract's name.
    """

    field_names: Mapping[str, str] = field(default_factory=dict)
    words: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in record.items():
            words = self.words.get(name)
            if words is not None and isinstance(value, str):
                value = words.get(value, value)
            target = out
            *parents, leaf = self.field_names.get(name, name).split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        return out


# A second vendor: camelCase Vietnamese field names, nested units, its own status and channel words.
VENDOR_B = Dialect(
    field_names={
        "code": "maHoSo",
        "agency_code": "donVi.ma",
        "procedure_code": "thuTuc.ma",
        "field_code": "linhVuc.ma",
        "field_name": "linhVuc.ten",
        "channel": "kenhNop",
        "received_at": "ngayTiepNhan",
        "due_at": "ngayHenTra",
        "finished_at": "ngayTraKetQua",
        "status": "trangThai",
        "fee_required": "coPhi",
        "paid_online": "thanhToanTrucTuyen",
        "digitized": "daSoHoa",
        "result_electronic": "ketQuaDienTu",
        "rating": "danhGia",
        "applicant": "nguoiNop",
        "updated_at": "ngayCapNhat",
        "deleted": "daXoa",
    },
    words={
        "channel": {"ONLINE": "TRUC_TUYEN", "DIRECT": "TRUC_TIEP", "POSTAL": "BUU_CHINH"},
        "status": {
            "RECEIVED": "MOI_TIEP_NHAN",
            "PROCESSING": "DANG_XU_LY",
            "SUPPLEMENT_REQUESTED": "CHO_BO_SUNG",
            "RESOLVED": "DA_TRA_KET_QUA",
            "RETURNED": "TRA_LAI",
            "WITHDRAWN": "RUT_HO_SO",
            "CANCELLED": "HUY",
        },
    },
)


@dataclass(frozen=True)
class Settings:
    """How the simulated system behaves.

    The simulated clock starts at `as_of`; None means after the last version (everything visible),
    or, with `real_time`, the real wall clock (a live system whose future versions appear as time
    passes). A version is visible once the clock is `commit_lag_seconds` past its `updated_at`.
    """

    client_id: str
    client_secret: str = field(repr=False)
    token_ttl_seconds: int = 300
    as_of: datetime | None = None
    real_time: bool = False
    commit_lag_seconds: float = 0.0
    naive_time_share: float = 0.0
    utc_time_share: float = 0.0
    nfd_field_name_share: float = 0.0
    faults: Faults = field(default_factory=Faults)
    base_path: str = ""
    quirk_seed: int = 0
    dialect: Dialect | None = None

    def __post_init__(self) -> None:
        if self.token_ttl_seconds < 1:
            raise ValueError("token_ttl_seconds must be at least 1")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        if self.commit_lag_seconds < 0:
            raise ValueError("commit_lag_seconds must not be negative")
        for name in ("naive_time_share", "utc_time_share", "nfd_field_name_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.naive_time_share + self.utc_time_share > 1.0:
            raise ValueError("naive_time_share + utc_time_share must not exceed 1")
        if self.base_path and (not self.base_path.startswith("/") or self.base_path.endswith("/")):
            raise ValueError("base_path must start with '/' and not end with '/' (or be empty)")


class _BadRequest(Exception):
    """A request parameter the API refuses (answered 400)."""


# ---------------------------------------------------------------- state


class _TokenStore:
    def __init__(self, ttl_seconds: int) -> None:
        self._ttl = ttl_seconds
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._expiry = {key: expiry for key, expiry in self._expiry.items() if expiry > now}
            self._expiry[token] = now + self._ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and time.monotonic() < expiry


@dataclass(frozen=True)
class _FaultPlan:
    delay_seconds: float = 0.0
    status: int | None = None
    truncation: TruncationStyle | None = None


class _FaultInjector:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()

    def plan(self, endpoint: Endpoint) -> _FaultPlan:
        faults = self._faults
        if endpoint not in faults.endpoints:
            return _FaultPlan()
        with self._lock:
            # Always the same number of draws per request, so one seed gives one sequence of faults.
            slow, limited, unavailable, truncated, pick = (self._random.random() for _ in range(5))
        status: int | None = None
        if limited < faults.too_many_requests_share:
            status = 429
        elif unavailable < faults.unavailable_share:
            status = faults.unavailable_statuses[int(pick * len(faults.unavailable_statuses))]
        truncation = None
        if truncated < faults.truncated_share:
            truncation = faults.truncation_styles[int(pick * len(faults.truncation_styles))]
        return _FaultPlan(faults.slow_seconds if slow < faults.slow_share else 0.0, status, truncation)


@dataclass(frozen=True)
class _View:
    """The current version of every visible dossier, ordered by (updated_at, code)."""

    times: npt.NDArray[np.int64]
    code_ranks: npt.NDArray[np.int64]
    dossiers: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]


class _VersionIndex:
    """Version times of all dossiers, answering 'which version is current at T' with numpy."""

    def __init__(self, dataset: Dataset) -> None:
        histories = dataset.dossiers
        counts = np.fromiter((len(history.states) for history in histories), dtype=np.int64, count=len(histories))
        self._counts = counts
        self._starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self._times = np.fromiter(
            (int(state.updated_at.timestamp()) for history in histories for state in history.states),
            dtype=np.int64,
            count=int(counts.sum()),
        )
        self._sorted_times = np.sort(self._times)
        codes = [history.code for history in histories]
        code_order = sorted(range(len(codes)), key=codes.__getitem__)
        self.sorted_codes = [codes[position] for position in code_order]
        self.code_ranks = np.empty(len(codes), dtype=np.int64)
        self.code_ranks[code_order] = np.arange(len(codes))
        self._views: OrderedDict[int, _View] = OrderedDict()
        self._lock = threading.Lock()

    def view(self, cutoff: int) -> _View:
        """Dossiers as seen when every version with updated_at <= cutoff (epoch seconds) is visible."""
        # Two cut-offs with the same number of visible versions see the same data.
        visible_total = int(np.searchsorted(self._sorted_times, cutoff, side="right"))
        with self._lock:
            cached = self._views.get(visible_total)
            if cached is not None:
                self._views.move_to_end(visible_total)
                return cached
        view = self._build_view(cutoff)
        with self._lock:
            self._views[visible_total] = view
            while len(self._views) > VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
        return view

    def _build_view(self, cutoff: int) -> _View:
        if len(self._counts) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return _View(empty, empty, empty, empty)
        visible = np.add.reduceat((self._times <= cutoff).astype(np.int64), self._starts)
        dossiers = np.flatnonzero(visible > 0)
        positions = visible[dossiers] - 1
        times = self._times[self._starts[dossiers] + positions]
        ranks = self.code_ranks[dossiers]
        order = np.lexsort((ranks, times))
        return _View(times[order], ranks[order], dossiers[order], positions[order])


class _SimulatorState:
    def __init__(self, dataset: Dataset, settings: Settings) -> None:
        self.dataset = dataset
        self.settings = settings
        self.tokens = _TokenStore(settings.token_ttl_seconds)
        self.faults = _FaultInjector(settings.faults)
        self.index = _VersionIndex(dataset)
        self._as_of = settings.as_of
        self._clock_lock = threading.Lock()
        self.procedures_body = _json_bytes({"data": [_procedure_json(item) for item in dataset.procedures]})

    @property
    def as_of(self) -> datetime | None:
        with self._clock_lock:
            return self._as_of

    def set_clock(self, as_of: datetime | None) -> None:
        if as_of is not None and as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        with self._clock_lock:
            self._as_of = as_of

    def now(self) -> datetime | None:
        """The simulated time; None when the clock stands after the last version."""
        as_of = self.as_of
        if as_of is not None:
            return as_of
        return datetime.now(LOCAL_TIMEZONE) if self.settings.real_time else None

    def clock_mode(self) -> str:
        return "fixed" if self.as_of is not None else "real_time" if self.settings.real_time else "end_of_data"

    def page(
        self, updated_from: float | None, updated_to: float | None, cursor: tuple[int, str] | None, limit: int
    ) -> bytes:
        # A version is committed (visible) only commit_lag seconds after the time it is stamped with.
        now = self.now()
        cutoff = END_OF_DATA if now is None else math.floor(now.timestamp() - self.settings.commit_lag_seconds)
        view = self.index.view(cutoff)
        low = 0 if updated_from is None else int(np.searchsorted(view.times, math.ceil(updated_from), "left"))
        high = (
            len(view.times) if updated_to is None else int(np.searchsorted(view.times, math.ceil(updated_to), "left"))
        )
        if cursor is not None:
            cursor_time, cursor_code = cursor
            block_low = int(np.searchsorted(view.times, cursor_time, "left"))
            block_high = int(np.searchsorted(view.times, cursor_time, "right"))
            # Ranks below this one belong to codes <= the cursor's code, whether or not it still exists.
            rank = bisect_right(self.index.sorted_codes, cursor_code)
            after = block_low + int(np.searchsorted(view.code_ranks[block_low:block_high], rank, "left"))
            low = max(low, after)
        end = min(low + limit, high) if low < high else low
        records = []
        last: Dossier | None = None
        for dossier_index, position in zip(
            view.dossiers[low:end].tolist(), view.positions[low:end].tolist(), strict=True
        ):
            last = self.dataset.dossiers[dossier_index].version(position)
            records.append(self._dossier_json(last))
        next_cursor = None
        if end < high and last is not None:
            next_cursor = _encode_cursor(int(last.updated_at.timestamp()), last.code)
        return _json_bytes({"data": records, "next_cursor": next_cursor})

    def _dossier_json(self, dossier: Dossier) -> dict[str, Any]:
        settings = self.settings
        style_draw = _stable_share(f"{settings.quirk_seed}:time:{dossier.code}")
        if style_draw < settings.naive_time_share:
            style = _TimeStyle.NAIVE
        elif style_draw < settings.naive_time_share + settings.utc_time_share:
            style = _TimeStyle.UTC
        else:
            style = _TimeStyle.OFFSET
        field_name = dossier.field_name
        if _stable_share(f"{settings.quirk_seed}:nfd:{dossier.code}") < settings.nfd_field_name_share:
            field_name = unicodedata.normalize("NFD", field_name)
        applicant = dossier.applicant
        record: dict[str, Any] = {
            "code": dossier.code,
            "agency_code": dossier.agency_code,
            "procedure_code": dossier.procedure_code,
            "field_code": dossier.field_code,
            "field_name": field_name,
            "channel": dossier.channel.value,
            "received_at": _format_time(dossier.received_at, style),
            "due_at": _format_time(dossier.due_at, style),
            "finished_at": _format_time(dossier.finished_at, style),
            "status": dossier.status.value,
            "fee_required": dossier.fee_required,
            "paid_online": dossier.paid_online,
            "digitized": dossier.digitized,
            "result_electronic": dossier.result_electronic,
            "rating": dossier.rating,
            "applicant": {
                "name": applicant.name,
                "id_number": applicant.id_number,
                "phone": applicant.phone,
                "address": applicant.address,
            },
            "updated_at": _format_time(dossier.updated_at, style),
            "deleted": dossier.deleted,
        }
        return record if settings.dialect is None else settings.dialect.apply(record)


# ---------------------------------------------------------------- formats


class _TimeStyle(StrEnum):
    OFFSET = "offset"  # 2019-05-10T17:00:00+07:00
    NAIVE = "naive"  # 2019-05-10T17:00:00, meaning UTC+7 (a vendor's quirk)
    UTC = "utc"  # 2019-05-10T10:00:00Z


def _format_time(moment: datetime | None, style: _TimeStyle) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(LOCAL_TIMEZONE)
    if style is _TimeStyle.NAIVE:
        return local.replace(tzinfo=None).isoformat(timespec="seconds")
    if style is _TimeStyle.UTC:
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")


def _stable_share(key: str) -> float:
    """A number in [0, 1) fixed by `key`: the same record always shows the same quirks."""
    return zlib.crc32(key.encode("utf-8")) / 2**32


def _procedure_json(procedure: Procedure) -> dict[str, Any]:
    return {
        "code": procedure.code,
        "name": procedure.name,
        "field_code": procedure.field_code,
        "agency_code": procedure.agency_code,
        "online_type": procedure.online_type.value,
        "fee_required": procedure.fee_required,
        "online_payment": procedure.online_payment,
        "published_on_time": procedure.published_on_time,
        "publication_updated_on_time": procedure.publication_updated_on_time,
        "content_complete": procedure.content_complete,
    }


def _json_bytes(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _encode_cursor(updated_at: int, code: str) -> str:
    return base64.urlsafe_b64encode(_json_bytes([updated_at, code])).decode("ascii").rstrip("=")


def _decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        updated_at, code = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise _BadRequest("cursor is not one this server issued") from None
    if not isinstance(updated_at, int) or not isinstance(code, str):
        raise _BadRequest("cursor is not one this server issued")
    return updated_at, code


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with its offset (`Z` allowed); ValueError otherwise."""
    if "T" not in text and "t" not in text and " " not in text:
        raise ValueError("a date and a time are required")
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError("the time needs an offset (e.g. +07:00 or Z)")
    return moment


def _time_parameter(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_rfc3339(text).timestamp()
    except ValueError:
        raise _BadRequest(
            f"{name} must be an RFC 3339 time with an offset, e.g. 2026-11-14T00:00:00+07:00 "
            "(encode '+' as %2B in the query string)"
        ) from None


def _limit_parameter(request: Request) -> int:
    text = request.query_params.get("limit")
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise _BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return limit


# ---------------------------------------------------------------- responses


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(_json_bytes({"error": error, "message": message}), status, headers, "application/json")


def _fault_response(plan: _FaultPlan, settings: Settings) -> Response | None:
    if plan.status is None:
        return None
    retry_after = {"Retry-After": str(settings.faults.retry_after_seconds)}
    if plan.status == 429:
        return _error(429, "rate_limited", "too many requests; retry later", retry_after)
    # Gateways answer 502/504 without advice; the system itself says when to come back.
    headers = retry_after if plan.status == 503 else None
    return _error(plan.status, "unavailable", "service temporarily unavailable", headers)


class _CutOffResponse(Response):
    """A page that stops mid-body (see TruncationStyle)."""

    def __init__(self, body: bytes, style: TruncationStyle) -> None:
        super().__init__(media_type="application/json")
        self.full_body = body
        self.style = style

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        part = self.full_body[: max(1, len(self.full_body) // 2)]
        declared = len(self.full_body) if self.style is TruncationStyle.INCOMPLETE_READ else len(part)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(declared).encode())],
            }
        )
        if self.style is TruncationStyle.INCOMPLETE_READ:
            # Returning with the body unfinished makes the server close the connection mid-page.
            await send({"type": "http.response.body", "body": part, "more_body": True})
            return
        await send({"type": "http.response.body", "body": part, "more_body": False})


def _authorised(request: Request, state: _SimulatorState) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and bool(token) and state.tokens.valid(token.strip())


def _unauthorised() -> Response:
    return _error(
        401,
        "invalid_token",
        "missing, unknown or expired bearer token; fetch a new one at /oauth/token",
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _apply_gateway_faults(plan: _FaultPlan, settings: Settings) -> Response | None:
    if plan.delay_seconds:
        await asyncio.sleep(plan.delay_seconds)
    return _fault_response(plan, settings)


def create_app(dataset: Dataset, settings: Settings) -> FastAPI:
    """The simulator as an ASGI application (state lives in the app: one data set per app)."""
    state = _SimulatorState(dataset, settings)
    app = FastAPI(title="One-stop-shop simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.simulator = state
    base = settings.base_path

    @app.post(f"{base}/oauth/token")
    async def token(request: Request) -> Response:
        plan = state.faults.plan(Endpoint.TOKEN)
        failure = await _apply_gateway_faults(plan, settings)
        if failure is not None:
            return failure
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)

        def value(name: str) -> str:
            return form.get(name, [""])[0]

        if value("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        id_ok = hmac.compare_digest(value("client_id").encode(), settings.client_id.encode())
        secret_ok = hmac.compare_digest(value("client_secret").encode(), settings.client_secret.encode())
        if not (id_ok and secret_ok):
            return _error(401, "invalid_client", "unknown client or wrong secret")
        body = {"access_token": state.tokens.issue(), "token_type": "Bearer", "expires_in": settings.token_ttl_seconds}
        return Response(_json_bytes(body), 200, {"Cache-Control": "no-store"}, "application/json")

    @app.get(f"{base}/api/v1/dossiers")
    async def dossiers(request: Request) -> Response:
        plan = state.faults.plan(Endpoint.DOSSIERS)
        failure = await _apply_gateway_faults(plan, settings)
        if failure is not None:
            return failure
        if not _authorised(request, state):
            return _unauthorised()
        try:
            updated_from = _time_parameter(request, "updated_from")
            updated_to = _time_parameter(request, "updated_to")
            limit = _limit_parameter(request)
            cursor_text = request.query_params.get("cursor")
            cursor = _decode_cursor(cursor_text) if cursor_text else None
            if updated_from is not None and updated_to is not None and updated_from > updated_to:
                raise _BadRequest("updated_from is after updated_to")
        except _BadRequest as refusal:
            return _error(400, "invalid_request", str(refusal))
        body = await run_in_threadpool(state.page, updated_from, updated_to, cursor, limit)
        if plan.truncation is not None:
            return _CutOffResponse(body, plan.truncation)
        return Response(body, 200, media_type="application/json")

    @app.get(f"{base}/api/v1/procedures")
    async def procedures(request: Request) -> Response:
        plan = state.faults.plan(Endpoint.PROCEDURES)
        failure = await _apply_gateway_faults(plan, settings)
        if failure is not None:
            return failure
        if not _authorised(request, state):
            return _unauthorised()
        if plan.truncation is not None:
            return _CutOffResponse(state.procedures_body, plan.truncation)
        return Response(state.procedures_body, 200, media_type="application/json")

    @app.get(f"{base}/_sim/clock")
    async def read_clock() -> Response:
        return _clock_response(state)

    @app.post(f"{base}/_sim/clock")
    async def move_clock(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
            text = payload["as_of"]
            as_of = None if text is None else parse_rfc3339(str(text))
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_request", 'body must be {"as_of": "<RFC 3339 time with offset>" | null}')
        state.set_clock(as_of)
        log.info("simulated clock moved to %s", state.clock_mode() if as_of is None else as_of.isoformat())
        return _clock_response(state)

    @app.get(f"{base}/_sim/health")
    async def health() -> Response:
        return Response(
            _json_bytes({"status": "ok", "dossiers": len(dataset.dossiers)}), 200, media_type="application/json"
        )

    return app


def _clock_response(state: _SimulatorState) -> Response:
    as_of, now = state.as_of, state.now()
    body = {
        "as_of": None if as_of is None else as_of.isoformat(),
        "mode": state.clock_mode(),
        "now": None if now is None else now.isoformat(),
    }
    return Response(_json_bytes(body), 200, media_type="application/json")


# ---------------------------------------------------------------- running


class _DropIntendedUnfinishedResponses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _UNFINISHED_RESPONSE_MESSAGE


def _quiet_intended_cut_offs() -> None:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(item, _DropIntendedUnfinishedResponses) for item in error_log.filters):
        error_log.addFilter(_DropIntendedUnfinishedResponses())


def _bound_socket(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    # Listening at once: connections made before uvicorn takes over wait in the backlog, so the
    # printed base URL is usable as soon as it is printed.
    listener.listen(128)
    return listener


class RunningServer:
    """A simulator serving in a background thread (for tests): `with start_in_thread(...) as server:`."""

    def __init__(self, app: FastAPI, listener: socket.socket, log_level: str) -> None:
        host, port = listener.getsockname()[:2]
        self.base_url = f"http://{host}:{port}{app.state.simulator.settings.base_path}"
        self._state: _SimulatorState = app.state.simulator
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._listener = listener
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="onestop-simulator", daemon=True
        )

    def _start(self, timeout_seconds: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the one-stop-shop simulator did not start")
            time.sleep(0.01)

    def set_clock(self, as_of: datetime | None) -> None:
        """Freeze the simulated clock at `as_of` (None: back to the configured mode), as POST /_sim/clock does."""
        self._state.set_clock(as_of)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._listener.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(dataset: Dataset, settings: Settings, host: str = "127.0.0.1") -> RunningServer:
    """Serve `dataset` on a free loopback port in a background thread; returns once it accepts requests."""
    _quiet_intended_cut_offs()
    server = RunningServer(create_app(dataset, settings), _bound_socket(host, 0), log_level="warning")
    server._start()
    return server


# ---------------------------------------------------------------- command line


def _date(text: str) -> date:
    return date.fromisoformat(text)


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share is between 0 and 1")
    return value


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.onestop",
        description="Serve a simulated one-stop-shop REST system (department-systems.md §1) in the foreground.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--base-path", default="", help="path prefix of every endpoint, e.g. /dvc")
    parser.add_argument(
        "--dataset",
        choices=("generated", "lam-dong-2019"),
        default="generated",
        help="lam-dong-2019: the calibrated year reproducing Lâm Đồng's 2019 II.06a totals",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--volume", type=int, default=20_000, help="dossiers of the generated data set")
    parser.add_argument("--start", type=_date, help="first day of the generated period (default: end - 399 days)")
    parser.add_argument("--end", type=_date, help="last day of the generated period (default: today)")
    parser.add_argument("--province-suffix", default="H99")
    parser.add_argument("--client-id", default=None, help=f"default: ${CLIENT_ID_ENV} or 'baocao'")
    parser.add_argument("--client-secret", default=None, help=f"default: ${CLIENT_SECRET_ENV} (required)")
    parser.add_argument("--token-ttl", type=int, default=300, help="token lifetime in seconds")
    parser.add_argument(
        "--as-of",
        default="now",
        help="the simulated clock: 'now' follows real time (default), 'end' shows every version, "
        "or an RFC 3339 time freezes it there",
    )
    parser.add_argument("--commit-lag", type=float, default=0.0, help="seconds before a version becomes visible")
    parser.add_argument("--naive-time-share", type=_share, default=0.0, help="records with times without offset")
    parser.add_argument("--utc-time-share", type=_share, default=0.0, help="records with times in UTC (Z)")
    parser.add_argument("--nfd-field-name-share", type=_share, default=0.0, help="records with NFD field_name")
    parser.add_argument("--fault-429", type=_share, default=0.0, help="share of answers 429 with Retry-After")
    parser.add_argument("--fault-503", type=_share, default=0.0, help="share of answers 503 with Retry-After")
    parser.add_argument("--fault-slow", type=_share, default=0.0, help="share of slow answers")
    parser.add_argument("--fault-truncated", type=_share, default=0.0, help="share of pages cut off mid-body")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of 429 and 503")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--fault-endpoints", default="dossiers", help="comma-separated: dossiers, procedures, token")
    parser.add_argument("--registry-out", type=Path, help="write the agency registry CSV (code,name,level) here")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def _settings_from(arguments: argparse.Namespace, environment: dict[str, str]) -> Settings:
    client_secret = arguments.client_secret or environment.get(CLIENT_SECRET_ENV)
    if not client_secret:
        raise SystemExit(f"a client secret is required: --client-secret or ${CLIENT_SECRET_ENV}")
    try:
        endpoints = frozenset(Endpoint(name.strip()) for name in arguments.fault_endpoints.split(",") if name.strip())
        as_of = None if arguments.as_of in ("now", "end") else parse_rfc3339(arguments.as_of)
    except ValueError as problem:
        raise SystemExit(f"bad option: {problem}") from None
    return Settings(
        client_id=arguments.client_id or environment.get(CLIENT_ID_ENV) or "baocao",
        client_secret=client_secret,
        token_ttl_seconds=arguments.token_ttl,
        as_of=as_of,
        real_time=arguments.as_of == "now",
        commit_lag_seconds=arguments.commit_lag,
        naive_time_share=arguments.naive_time_share,
        utc_time_share=arguments.utc_time_share,
        nfd_field_name_share=arguments.nfd_field_name_share,
        faults=Faults(
            too_many_requests_share=arguments.fault_429,
            unavailable_share=arguments.fault_503,
            slow_share=arguments.fault_slow,
            truncated_share=arguments.fault_truncated,
            retry_after_seconds=arguments.retry_after,
            slow_seconds=arguments.slow_seconds,
            seed=arguments.fault_seed,
            endpoints=endpoints,
        ),
        base_path=arguments.base_path.rstrip("/"),
    )


def _dataset_from(arguments: argparse.Namespace) -> Dataset:
    if arguments.dataset == "lam-dong-2019":
        return generate_calibrated(
            LAM_DONG_2019,
            LAM_DONG_2019_PERIOD_START,
            LAM_DONG_2019_PERIOD_END,
            arguments.seed,
            province_suffix=arguments.province_suffix,
        ).dataset
    end = arguments.end or datetime.now(LOCAL_TIMEZONE).date()
    start = arguments.start or end - timedelta(days=399)
    return generate(arguments.seed, arguments.volume, start=start, end=end, province_suffix=arguments.province_suffix)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in the foreground until interrupted (Ctrl-C or SIGTERM); prints the base URL first."""
    arguments = _argument_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings_from(arguments, dict(os.environ))
    dataset = _dataset_from(arguments)
    if arguments.registry_out:
        write_registry_csv(dataset, arguments.registry_out)
        log.info("agency registry written to %s", arguments.registry_out)
    _quiet_intended_cut_offs()
    listener = _bound_socket(arguments.host, arguments.port)
    host, port = listener.getsockname()[:2]
    base_url = f"http://{host}:{port}{settings.base_path}"
    print(base_url, flush=True)
    log.info(
        "one-stop-shop simulator at %s: %d agencies, %d procedures, %d dossiers (%d versions), period %s → %s",
        base_url,
        len(dataset.agencies),
        len(dataset.procedures),
        len(dataset.dossiers),
        dataset.version_count,
        dataset.period_start,
        dataset.period_end,
    )
    config = uvicorn.Config(
        create_app(dataset, settings),
        log_level=arguments.log_level,
        access_log=arguments.log_level == "debug",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-sends the signal to the handlers that
    # were in place before it started; these ones let the process end normally (exit status 0).
    stopped_by: list[int] = []
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, lambda number, frame: stopped_by.append(number))
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
    if stopped_by:
        log.info("one-stop-shop simulator stopped by %s", signal.Signals(stopped_by[0]).name)
    return 0
