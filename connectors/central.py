"""Client of the central reporting endpoint (central-api.md): POST a frozen submission, read receipts.

It sends exactly the bytes and Idempotency-Key it is given, on every try. Each answer of the
contract is classified: accepted (201, a replay, or a duplicate), retriable (429/503 with
Retry-After, 5xx, REQUEST_IN_PROGRESS, connection faults) or final (rejected, key reused, version
conflict, authentication) — final answers are never retried automatically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests

from baocao.connectors.http import HttpClient, TransientFault, read_json, retry_after_seconds
from baocao.core.errors import RetriableError
from baocao.core.settings import CentralConfig

JWS_SIGNATURE_HEADER = "JWS-Signature"  # central-api.md, "Signatures": the detached JWS of a JSON body
# The code of a CONFLICT answer whose receipt does not vouch for the bytes sent (its sha256 differs).
RECEIPT_MISMATCH = "RECEIPT_MISMATCH"
# central-api.md, "Receipt (JSON)": every member a receipt has.
RECEIPT_FIELDS = (
    "receipt_id",
    "submission_id",
    "sender",
    "report_type",
    "period",
    "version",
    "status",
    "received_at",
    "sha256",
    "supersedes",
    "duplicate",
)


def receipt_shape_problem(receipt: Any) -> str | None:
    """What makes a 200/201 body not a receipt of the contract, or None when it is one."""
    if not isinstance(receipt, dict):
        return f"a JSON {type(receipt).__name__}, not an object"
    missing = [name for name in RECEIPT_FIELDS if name not in receipt]
    if missing:
        return "no " + ", ".join(missing)
    if not isinstance(receipt["receipt_id"], str) or not receipt["receipt_id"]:
        return "receipt_id is not a string"
    if not isinstance(receipt["sha256"], str):
        return "sha256 is not a string"
    if not isinstance(receipt["duplicate"], bool):
        return "duplicate is not true or false"
    return None


class Verdict(StrEnum):
    ACCEPTED = "ACCEPTED"  # receipt in hand
    REJECTED = "REJECTED"  # the content is wrong (schema, rules, signature, size, type): fix and resend
    CONFLICT = "CONFLICT"  # key reused with other bytes, or version conflict: a person must look
    UNAUTHORISED = "UNAUTHORISED"  # token or sender wrong: fix the configuration, the same bytes may be resent


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    status: int
    code: str | None
    message: str
    receipt: dict[str, Any] | None = None
    errors: tuple[str, ...] = ()
    replayed: bool = False


def _error_body(response: requests.Response) -> tuple[str | None, str, tuple[str, ...]]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300], ()
    if not isinstance(body, dict):
        return None, str(body)[:300], ()
    errors = tuple(
        f"{e.get('code', '?')} at {e.get('path', '?')}: {e.get('message', '')}"
        for e in body.get("errors") or []
        if isinstance(e, dict)
    )
    return body.get("error"), str(body.get("message", "")), errors


class CentralClient:
    def __init__(self, central: CentralConfig, http: HttpClient | None = None) -> None:
        self.central = central
        self.http = http or HttpClient("central endpoint", central.retry)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.central.token.value}"}

    def submit(self, payload: bytes, idempotency_key: str, content_type: str, signature: str | None = None) -> Answer:
        """POST /submissions until a final answer or the retry budget is spent (RetriableError).

        ``signature`` is the detached JWS of a signed JSON payload, sent as ``JWS-Signature`` on every try.
        """
        expected_sha256 = hashlib.sha256(payload).hexdigest()

        def read(response: requests.Response) -> Answer:
            status = response.status_code
            if status in (200, 201):
                try:
                    receipt = response.json()
                except ValueError as error:
                    # The answer was cut off: the central may have stored it; the same key makes the retry safe.
                    raise TransientFault("receipt body cut off") from error
                replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
                wrong = receipt_shape_problem(receipt)
                if wrong:
                    # Not a receipt: the central (or something in front of it) may have stored the
                    # submission or not. It stays frozen; the same key makes the next send safe.
                    raise RetriableError(
                        f"central answered HTTP {status} of the wrong shape ({wrong}): nothing recorded as "
                        "accepted, the submission stays frozen; `baocao publish --pending` or a rerun sends it again"
                    )
                if not receipt["duplicate"] and receipt["sha256"] != expected_sha256:
                    return Answer(
                        Verdict.CONFLICT,
                        status,
                        RECEIPT_MISMATCH,
                        f"receipt {str(receipt['receipt_id'])[:100]} has sha256 {receipt['sha256'][:16]}..., "
                        f"not that of the bytes sent ({expected_sha256[:16]}...)",
                        receipt=receipt,
                    )
                return Answer(Verdict.ACCEPTED, status, None, "accepted", receipt=receipt, replayed=replayed)
            code, message, errors = _error_body(response)
            if status == 409 and code == "REQUEST_IN_PROGRESS":
                raise TransientFault(
                    "central still processing the first request with this key", retry_after_seconds(response)
                )
            if status >= 500:
                raise TransientFault(f"HTTP {status} {code or ''}".strip(), retry_after_seconds(response))
            if status in (401, 403):
                return Answer(Verdict.UNAUTHORISED, status, code, message, errors=errors)
            if code in ("IDEMPOTENCY_KEY_REUSED", "VERSION_CONFLICT"):
                return Answer(Verdict.CONFLICT, status, code, message, errors=errors)
            return Answer(Verdict.REJECTED, status, code, message, errors=errors)

        return self.http.call(
            "POST",
            f"{self.central.url}/submissions",
            read,
            "submission",
            data=payload,
            headers={
                **self._headers(),
                "Content-Type": content_type,
                "Idempotency-Key": idempotency_key,
                **({JWS_SIGNATURE_HEADER: signature} if signature else {}),
            },
        )

    def receipts(self, report_type: str, period_id: str) -> list[dict[str, Any]]:
        def read(response: requests.Response) -> list[dict[str, Any]]:
            if response.status_code != 200:
                code, message, _ = _error_body(response)
                raise TransientFault(f"HTTP {response.status_code} {code}: {message}")
            body = read_json(response)
            if isinstance(body, dict):
                body = body.get("data") or body.get("receipts") or []
            if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
                raise TransientFault("central answered a receipt list of the wrong shape")
            return body

        return self.http.call(
            "GET",
            f"{self.central.url}/submissions",
            read,
            "receipt list",
            params={"report_type": report_type, "period": period_id},
            headers=self._headers(),
        )
