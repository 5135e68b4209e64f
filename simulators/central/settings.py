"""Configuration of the central sandbox: one frozen object, read once at the edge.

Tokens are secrets: they are kept out of ``repr`` and never logged. Senders' certificates are public
but pinned: the sandbox verifies a sender's signatures with its registered certificate only.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from cryptography import x509

FaultMode = Literal["normal", "maintenance", "overload"]
FAULT_MODES: Final[tuple[str, ...]] = ("normal", "maintenance", "overload")
DEFAULT_DATABASE_URL: Final = "sqlite:///var/central-sandbox.sqlite3"
MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # central-api.md: at most 10 MiB
MIN_IDEMPOTENCY_RETENTION_DAYS: Final = 30  # central-api.md: keys kept at least 30 days


@dataclass(frozen=True)
class Settings:
    """Everything the sandbox needs to run.

    ``tokens`` maps a bearer token to the one sender agency code it belongs to;
    ``signature_required`` maps a sender code to whether it must sign; ``certificates`` maps a sender code
    to its pinned X.509 certificate (PEM text), the only one its signatures are verified against (a
    sender that must sign needs one);
    ``fault_mode``/``retry_after``/``overload_share`` inject 503/429 answers (``overload_share`` is the
    share of requests refused in overload mode); ``processing_delay`` (seconds) keeps every new
    submission "in progress" that long. ``database_schema`` puts the tables in a PostgreSQL schema.
    """

    database_url: str = DEFAULT_DATABASE_URL
    tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    signature_required: Mapping[str, bool] = field(default_factory=dict)
    certificates: Mapping[str, str] = field(default_factory=dict, repr=False)
    processing_delay: float = 0.0
    fault_mode: FaultMode = "normal"
    retry_after: int = 2
    overload_share: float = 1.0
    database_schema: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    idempotency_retention_days: int = MIN_IDEMPOTENCY_RETENTION_DAYS
    # A processing marker older than this is taken to belong to a crashed worker and may be taken over.
    processing_lease_seconds: float = 300.0
    # When set, /_sandbox/mode needs "Authorization: Bearer <admin_token>"; open otherwise (loopback).
    admin_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Copies behind read-only views: the object is frozen all the way down.
        object.__setattr__(self, "tokens", MappingProxyType(dict(self.tokens)))
        object.__setattr__(self, "signature_required", MappingProxyType(dict(self.signature_required)))
        object.__setattr__(self, "certificates", MappingProxyType(dict(self.certificates)))
        for sender, pem in self.certificates.items():
            try:
                found = x509.load_pem_x509_certificates(pem.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise ValueError(f"the certificate registered for sender {sender} is not PEM") from None
            if len(found) != 1:
                raise ValueError(f"register exactly one certificate for sender {sender}, not {len(found)}")
        unpinned = sorted(
            s for s, required in self.signature_required.items() if required and s not in self.certificates
        )
        if unpinned:
            raise ValueError(f"senders {unpinned} must sign but have no registered certificate")
        if self.fault_mode not in FAULT_MODES:
            raise ValueError(f"fault_mode must be one of {FAULT_MODES}, not {self.fault_mode!r}")
        if self.retry_after < 0 or self.processing_delay < 0:
            raise ValueError("retry_after and processing_delay must not be negative")
        if not 0.0 <= self.overload_share <= 1.0:
            raise ValueError("overload_share must be between 0 and 1")
        if self.idempotency_retention_days < MIN_IDEMPOTENCY_RETENTION_DAYS:
            raise ValueError(f"idempotency keys must be kept at least {MIN_IDEMPOTENCY_RETENTION_DAYS} days")
        if not 0 < self.max_body_bytes <= MAX_BODY_BYTES:
            raise ValueError(f"max_body_bytes must be between 1 and {MAX_BODY_BYTES}")
        if any(not token for token in self.tokens):
            raise ValueError("empty bearer token")

    def sender_for_token(self, token: str) -> str | None:
        """The sender agency code the token belongs to, or None for an unknown token."""
        found: str | None = None
        for known, sender in self.tokens.items():
            # Compare against every token in constant time: no timing hint about near misses.
            if hmac.compare_digest(known.encode("utf-8"), token.encode("utf-8")):
                found = sender
        return found

    def requires_signature(self, sender: str) -> bool:
        return bool(self.signature_required.get(sender, False))

    def certificate_for(self, sender: str) -> x509.Certificate | None:
        """The sender's pinned certificate, or None when none is registered."""
        pem = self.certificates.get(sender)
        return None if pem is None else x509.load_pem_x509_certificate(pem.encode("ascii"))

    def to_json(self) -> str:
        """Serialise (including secrets) to hand the settings to worker processes."""
        data: dict[str, Any] = {
            "database_url": self.database_url,
            "tokens": dict(self.tokens),
            "signature_required": dict(self.signature_required),
            "certificates": dict(self.certificates),
            "processing_delay": self.processing_delay,
            "fault_mode": self.fault_mode,
            "retry_after": self.retry_after,
            "overload_share": self.overload_share,
            "database_schema": self.database_schema,
            "max_body_bytes": self.max_body_bytes,
            "idempotency_retention_days": self.idempotency_retention_days,
            "processing_lease_seconds": self.processing_lease_seconds,
            "admin_token": self.admin_token,
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["fault_mode"] = cast(FaultMode, data.get("fault_mode", "normal"))
        return cls(**data)
