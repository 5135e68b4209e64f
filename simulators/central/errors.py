"""Error answers of the central sandbox, always in the contract's shape.

Every 4xx/5xx body is ``{"error": CODE, "message": text, "errors": [{"code", "path", "message"}]}``
(central-api.md). Codes named in the contract keep their spelling; the others are the sandbox's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# Codes from the contract.
MALFORMED: Final = "MALFORMED"
SCHEMA_INVALID: Final = "SCHEMA_INVALID"
RULE_FAILED: Final = "RULE_FAILED"
SIGNATURE_INVALID: Final = "SIGNATURE_INVALID"
REQUEST_IN_PROGRESS: Final = "REQUEST_IN_PROGRESS"
IDEMPOTENCY_KEY_REUSED: Final = "IDEMPOTENCY_KEY_REUSED"
VERSION_CONFLICT: Final = "VERSION_CONFLICT"
# Codes where the contract names only the status.
UNAUTHORIZED: Final = "UNAUTHORIZED"
SENDER_MISMATCH: Final = "SENDER_MISMATCH"
PAYLOAD_TOO_LARGE: Final = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE: Final = "UNSUPPORTED_MEDIA_TYPE"
IDEMPOTENCY_KEY_MISSING: Final = "IDEMPOTENCY_KEY_MISSING"
IDEMPOTENCY_KEY_INVALID: Final = "IDEMPOTENCY_KEY_INVALID"
QUERY_INVALID: Final = "QUERY_INVALID"
NOT_FOUND: Final = "NOT_FOUND"
METHOD_NOT_ALLOWED: Final = "METHOD_NOT_ALLOWED"
OVERLOADED: Final = "OVERLOADED"
MAINTENANCE: Final = "MAINTENANCE"
INTERNAL_ERROR: Final = "INTERNAL_ERROR"


@dataclass(frozen=True)
class ErrorDetail:
    """One violation: a code, where it is (XPath-like for XML, JSON Pointer for JSON) and why."""

    code: str
    path: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message}


@dataclass(eq=False)  # exceptions must stay hashable
class ApiError(Exception):
    """An error answer; raised anywhere below the HTTP layer and rendered by the app."""

    status: int
    code: str
    message: str
    errors: Sequence[ErrorDetail] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def body(self) -> bytes:
        """The JSON body of the answer (exact bytes, as stored for idempotent replays)."""
        return error_body(self.code, self.message, self.errors)


def error_body(code: str, message: str, errors: Sequence[ErrorDetail] = ()) -> bytes:
    """Render the contract's error body."""
    payload: dict[str, Any] = {
        "error": code,
        "message": message,
        "errors": [detail.as_json() for detail in errors],
    }
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
