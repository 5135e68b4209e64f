"""HTTP layer of the central sandbox (FastAPI): transport checks, then the service.

Per request, in this order: fault injection (503/429 with Retry-After), bearer token (401),
``Idempotency-Key`` (400), media type (415), size (413, from Content-Length and while reading,
never holding more than the limit in memory), then ``CentralService``. Bodies are never logged.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from baocao.simulators.central import errors
from baocao.simulators.central.document import Style
from baocao.simulators.central.errors import ApiError, error_body
from baocao.simulators.central.model import BODY_MEMBER
from baocao.simulators.central.service import API_BASE_PATH, CentralService, json_bytes
from baocao.simulators.central.settings import FAULT_MODES, Settings
from baocao.simulators.central.signatures import PinnedCertificateVerifier, SignatureVerifier
from baocao.simulators.central.storage import ModeState, Storage, create_database_engine

logger = logging.getLogger(__name__)

_IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PERIOD_ID: Final = re.compile(r"\d{4}(-(0[1-9]|1[0-2])|-Q[1-4]|-H1|-9M)?")
_STYLES: Final[dict[str, Style]] = {"application/xml": "xml", "application/json": "json"}


def create_app(settings: Settings, verifier: SignatureVerifier | None = None) -> FastAPI:
    """Build the sandbox application; creates its tables and writes the configured fault mode."""
    storage = Storage(create_database_engine(settings.database_url, settings.database_schema))
    storage.create_tables()
    service = CentralService(settings, storage, verifier or PinnedCertificateVerifier(settings))
    storage.write_mode(service.initial_mode())
    signing = sorted(sender for sender, required in settings.signature_required.items() if required)
    if signing:
        logger.info("signatures required from %s (verified against their pinned certificates)", signing)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        storage.dispose()

    app = FastAPI(
        title="Central reporting endpoint (sandbox)",
        version="1",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    _install_error_handlers(app)

    async def guard(request: Request) -> str:
        """Fault injection, then authentication; returns the caller's sender code."""
        await run_in_threadpool(_check_fault_mode, service)
        return _authenticate(request, settings)

    @app.post(API_BASE_PATH + "/submissions")
    async def post_submission(request: Request) -> Response:
        sender = await guard(request)
        key = _idempotency_key(request)
        style = _media_style(request.headers.get("content-type"))
        body = await _read_limited_body(request, settings.max_body_bytes)
        answer = await run_in_threadpool(service.submit, sender, key, body, style, dict(request.headers))
        return Response(answer.body, answer.status, headers=dict(answer.headers), media_type="application/json")

    @app.get(API_BASE_PATH + "/submissions/{receipt_id}")
    async def get_submission(receipt_id: str, request: Request) -> Response:
        sender = await guard(request)
        receipt = await run_in_threadpool(service.get_receipt, sender, receipt_id)
        return Response(json_bytes(receipt), 200, media_type="application/json")

    @app.get(API_BASE_PATH + "/submissions")
    async def list_submissions(request: Request) -> Response:
        sender = await guard(request)
        report_type = request.query_params.get("report_type", "")
        period = request.query_params.get("period", "")
        problems = []
        if report_type not in BODY_MEMBER:
            problems.append(errors.ErrorDetail(errors.QUERY_INVALID, "report_type", "unknown or missing report_type"))
        if not _PERIOD_ID.fullmatch(period):
            problems.append(errors.ErrorDetail(errors.QUERY_INVALID, "period", "missing or malformed period id"))
        if problems:
            raise ApiError(400, errors.QUERY_INVALID, "report_type and period are required", problems)
        receipts = await run_in_threadpool(service.list_receipts, sender, report_type, period)
        return Response(json_bytes(receipts), 200, media_type="application/json")

    @app.get("/_sandbox/mode")
    async def get_mode(request: Request) -> Response:
        _authenticate_admin(request, settings)
        state = await run_in_threadpool(service.current_mode)
        return Response(json_bytes(_mode_json(state)), 200, media_type="application/json")

    @app.post("/_sandbox/mode")
    async def set_mode(request: Request) -> Response:
        """Switch fault injection for all workers: ``{"mode", "retry_after", "overload_share", "processing_delay"}``."""
        _authenticate_admin(request, settings)
        try:
            wanted = await request.json()
            current = await run_in_threadpool(service.current_mode)
            state = ModeState(
                mode=str(wanted.get("mode", current.mode)),
                retry_after=int(wanted.get("retry_after", current.retry_after)),
                overload_share=float(wanted.get("overload_share", current.overload_share)),
                processing_delay=float(wanted.get("processing_delay", current.processing_delay)),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise ApiError(400, errors.MALFORMED, f"expected a JSON object of mode settings: {exc}") from None
        if (
            state.mode not in FAULT_MODES
            or state.retry_after < 0
            or state.processing_delay < 0
            or not 0 <= state.overload_share <= 1
        ):
            raise ApiError(400, errors.QUERY_INVALID, f"mode must be one of {FAULT_MODES}; numbers not negative")
        await run_in_threadpool(service.storage.write_mode, state)
        logger.info("sandbox mode set to %s", state)
        return Response(json_bytes(_mode_json(state)), 200, media_type="application/json")

    return app


def _mode_json(state: ModeState) -> dict[str, Any]:
    return {
        "mode": state.mode,
        "retry_after": state.retry_after,
        "overload_share": state.overload_share,
        "processing_delay": state.processing_delay,
    }


# ---------------------------------------------------------------- transport checks


def _check_fault_mode(service: CentralService) -> None:
    state = service.current_mode()
    retry_after = {"Retry-After": str(state.retry_after)}
    if state.mode == "maintenance":
        raise ApiError(503, errors.MAINTENANCE, "the central is in maintenance; retry later", headers=retry_after)
    if state.mode == "overload" and random.random() < state.overload_share:
        raise ApiError(429, errors.OVERLOADED, "the central is overloaded; retry later", headers=retry_after)


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _authenticate(request: Request, settings: Settings) -> str:
    token = _bearer_token(request)
    sender = settings.sender_for_token(token) if token else None
    if sender is None:
        raise ApiError(
            401,
            errors.UNAUTHORIZED,
            "missing or unknown bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="central"'},
        )
    return sender


def _authenticate_admin(request: Request, settings: Settings) -> None:
    if settings.admin_token is None:
        return
    token = _bearer_token(request)
    if token is None or token != settings.admin_token:
        raise ApiError(401, errors.UNAUTHORIZED, "the sandbox admin endpoint needs the admin token")


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise ApiError(400, errors.IDEMPOTENCY_KEY_MISSING, "the Idempotency-Key header is required")
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            errors.IDEMPOTENCY_KEY_INVALID,
            "Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        )
    return key


def _media_style(content_type: str | None) -> Style:
    """``application/xml`` or ``application/json``, charset absent or UTF-8; 415 otherwise."""
    media, _, parameters = (content_type or "").partition(";")
    style = _STYLES.get(media.strip().lower())
    if style is None:
        raise ApiError(
            415,
            errors.UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/xml or application/json (charset UTF-8)",
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise ApiError(415, errors.UNSUPPORTED_MEDIA_TYPE, "the only accepted charset is UTF-8")
    return style


def _too_large(limit: int) -> ApiError:
    return ApiError(413, errors.PAYLOAD_TOO_LARGE, f"the body exceeds {limit} bytes")


async def _read_limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)  # refuse before reading anything
    # Chunked or lying clients: count while reading and stop just past the limit.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


# ---------------------------------------------------------------- error rendering


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return Response(exc.body(), exc.status, headers=dict(exc.headers), media_type="application/json")

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: errors.NOT_FOUND, 405: errors.METHOD_NOT_ALLOWED}.get(exc.status_code, f"HTTP_{exc.status_code}")
        return Response(
            error_body(code, str(exc.detail)),
            exc.status_code,
            headers=dict(exc.headers or {}),
            media_type="application/json",
        )

    async def validation_error(_request: Request, exc: Exception) -> Response:
        return Response(error_body(errors.QUERY_INVALID, str(exc)), 400, media_type="application/json")

    async def internal_error(_request: Request, exc: Exception) -> Response:
        logger.error("internal error: %s", type(exc).__name__)
        return Response(
            error_body(errors.INTERNAL_ERROR, "internal error; the request was not recorded, retry later"),
            500,
            media_type="application/json",
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
