"""The central's handling of one submission, from idempotency claim to receipt (central-api.md).

Order of checks for a new key: well-formed (400 MALFORMED) -> envelope sender is the token's
(403) -> signature (422 SIGNATURE_INVALID) -> schema (422 SCHEMA_INVALID) -> business rules (422
RULE_FAILED) -> versions (200 duplicate / 409 VERSION_CONFLICT / 201). The signature comes before
the schema so that a document the signature does not cover is refused as such (a relocated or
second signature also breaks the XSD), and so that schema, rules and versions read only what was
signed (``Verification.signed``) once a signature is verified. Every
answer from that point on is stored under the key and replayed for a byte-identical retry; an
unexpected failure releases the key instead, so the retry is processed afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from baocao.simulators.central import errors
from baocao.simulators.central.document import (
    MAX_REPORTED_ERRORS,
    Style,
    canonical_document,
    parse_body,
    render_path,
    sender_code_hint,
    validate_schema,
)
from baocao.simulators.central.errors import ApiError, ErrorDetail
from baocao.simulators.central.model import Submission, build_submission
from baocao.simulators.central.rules import check_business_rules
from baocao.simulators.central.settings import Settings
from baocao.simulators.central.signatures import SignatureVerifier
from baocao.simulators.central.storage import Claimed, InProgress, KeyReused, LostClaim, ModeState, Replay, Storage

logger = logging.getLogger(__name__)

API_BASE_PATH: Final = "/api/v1"
MEDIA_TYPES: Final[dict[Style, str]] = {"xml": "application/xml", "json": "application/json"}
_PURGE_INTERVAL_SECONDS: Final = 3600.0


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, exact JSON body bytes, extra headers."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_error(cls, error: ApiError) -> Answer:
        return cls(error.status, error.body(), dict(error.headers))


def receipt_json(row: Row[Any], *, duplicate: bool) -> dict[str, Any]:
    """The contract's receipt for a stored receipt row."""
    return {
        "receipt_id": row.receipt_id,
        "submission_id": row.submission_id,
        "sender": row.sender,
        "report_type": row.report_type,
        "period": row.period_id,
        "version": row.version,
        "status": "accepted",
        "received_at": row.received_at,
        "sha256": row.sha256,
        "supersedes": row.supersedes,
        "duplicate": duplicate,
    }


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _new_receipt_id() -> str:
    # Opaque to clients; time-ordered hex so receipts sort roughly by arrival in the database.
    return f"rcpt-{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def receipt_location(receipt_id: str) -> str:
    """Location of a receipt: the contract's ``/submissions/{id}`` under the API base path."""
    return f"{API_BASE_PATH}/submissions/{receipt_id}"


class CentralService:
    """Submission processing and read-back on top of ``Storage``."""

    def __init__(self, settings: Settings, storage: Storage, verifier: SignatureVerifier) -> None:
        self.settings = settings
        self.storage = storage
        self.verifier = verifier
        self._last_purge = 0.0

    # ------------------------------------------------------------ fault mode

    def initial_mode(self) -> ModeState:
        return ModeState(
            mode=self.settings.fault_mode,
            retry_after=self.settings.retry_after,
            overload_share=self.settings.overload_share,
            processing_delay=self.settings.processing_delay,
        )

    def current_mode(self) -> ModeState:
        return self.storage.read_mode() or self.initial_mode()

    # ------------------------------------------------------------ submitting

    def submit(self, sender: str, key: str, body: bytes, style: Style, headers: Mapping[str, str]) -> Answer:
        """Handle ``POST /submissions`` once transport checks (auth, size, media type, key) passed."""
        self._purge_old_keys()
        body_sha256 = hashlib.sha256(body).hexdigest()
        mode = self.current_mode()
        claim = self.storage.claim(sender, key, body_sha256, time.time(), self.settings.processing_lease_seconds)
        if isinstance(claim, Replay):
            replay_headers = {"Idempotent-Replayed": "true"}
            if claim.location:
                replay_headers["Location"] = claim.location
            return Answer(claim.status_code, claim.body, replay_headers)
        if isinstance(claim, KeyReused):
            raise ApiError(
                422,
                errors.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used before with a different body; use a new key for a new "
                "submission (do not retry automatically)",
            )
        if isinstance(claim, InProgress):
            raise ApiError(
                409,
                errors.REQUEST_IN_PROGRESS,
                "a request with this Idempotency-Key is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
        assert isinstance(claim, Claimed)
        try:
            if mode.processing_delay > 0:
                time.sleep(mode.processing_delay)  # sandbox: makes "in progress" observable
            return self._process(sender, key, claim.claim_id, body, body_sha256, style, headers)
        except LostClaim:
            raise ApiError(
                409,
                errors.REQUEST_IN_PROGRESS,
                "this request took too long and another attempt with the same key took over; retry later",
                headers={"Retry-After": "1"},
            ) from None
        except BaseException:
            self.storage.release(sender, key, claim.claim_id)
            raise

    def _process(
        self,
        sender: str,
        key: str,
        claim_id: str,
        body: bytes,
        body_sha256: str,
        style: Style,
        headers: Mapping[str, str],
    ) -> Answer:
        try:
            submission = self._validate(sender, body, style, headers)
        except ApiError as error:
            answer = Answer.from_error(error)
            with self.storage.transaction() as connection:
                self.storage.finish(connection, sender, key, claim_id, answer.status, answer.body, None)
            logger.info("submission from %s refused: %s %s", sender, error.status, error.code)
            return answer
        # A concurrent submission of the same version may win the unique constraint between our
        # reads and our insert; the second pass then sees it and answers duplicate or conflict.
        for _attempt in range(3):
            try:
                with self.storage.transaction() as connection:
                    answer = self._record(connection, submission, sender, key, body, body_sha256, style)
                    self.storage.finish(
                        connection, sender, key, claim_id, answer.status, answer.body, answer.headers.get("Location")
                    )
                return answer
            except IntegrityError:
                continue
        raise RuntimeError("could not record the submission after repeated version races")

    def _validate(self, sender: str, body: bytes, style: Style, headers: Mapping[str, str]) -> Submission:
        parsed = parse_body(body, style)
        claimed_sender = sender_code_hint(parsed)
        if claimed_sender is not None and claimed_sender != sender:
            raise ApiError(
                403,
                errors.SENDER_MISMATCH,
                f"the token belongs to sender {sender}, the envelope names {claimed_sender}",
            )
        verification = self.verifier.verify(sender=sender, body=body, parsed=parsed, headers=headers)
        if verification.problems:
            raise ApiError(422, errors.SIGNATURE_INVALID, "the signature is missing or invalid", verification.problems)
        if verification.signed is not None:
            parsed = verification.signed  # from here on only what the signature covers is read
        validate_schema(parsed)
        document = canonical_document(parsed)
        submission = build_submission(style, document)
        if submission.header.sender_code != sender:  # the schema-valid sender, in case the hint missed
            raise ApiError(403, errors.SENDER_MISMATCH, f"the token belongs to sender {sender}")
        violations = check_business_rules(submission)
        if violations:
            details = [
                ErrorDetail(v.code, render_path(style, document, v.path), v.message)
                for v in violations[:MAX_REPORTED_ERRORS]
            ]
            raise ApiError(
                422,
                errors.RULE_FAILED,
                f"the submission breaks {len(violations)} business rule(s)",
                details,
            )
        return submission

    def _record(
        self,
        connection: Connection,
        submission: Submission,
        sender: str,
        key: str,
        body: bytes,
        body_sha256: str,
        style: Style,
    ) -> Answer:
        header = submission.header
        report_type, period_id, version = header.report_type, header.period.id, header.version
        fingerprint = submission.content_fingerprint()
        same_version = self.storage.receipt_for_version(connection, sender, report_type, period_id, version)
        if same_version is not None:
            if same_version.content_fingerprint == fingerprint:
                # Accepted before under another key: the existing receipt, nothing stored twice.
                return Answer(200, json_bytes(receipt_json(same_version, duplicate=True)))
            return Answer.from_error(
                ApiError(
                    409,
                    errors.VERSION_CONFLICT,
                    f"version {version} of {report_type} {period_id} was already accepted with different "
                    f"content (receipt {same_version.receipt_id}); send a correction as version n+1",
                    [
                        ErrorDetail(
                            errors.VERSION_CONFLICT,
                            render_path(style, submission.document, ("header", "version")),
                            f"accepted as receipt {same_version.receipt_id}",
                        )
                    ],
                )
            )
        if version > 1:
            latest = self.storage.latest_receipt(connection, sender, report_type, period_id)
            problem = None
            if latest is None:
                problem = f"no version of {report_type} {period_id} has been accepted yet"
            elif header.supersedes != latest.receipt_id or version != latest.version + 1:
                problem = (
                    f"the latest accepted version of {report_type} {period_id} is {latest.version} "
                    f"(receipt {latest.receipt_id}); a correction must be version {latest.version + 1} "
                    f"superseding it"
                )
            if problem is not None:
                return Answer.from_error(
                    ApiError(
                        409,
                        errors.VERSION_CONFLICT,
                        problem,
                        [
                            ErrorDetail(
                                errors.VERSION_CONFLICT,
                                render_path(style, submission.document, ("header", "supersedes")),
                                problem,
                            )
                        ],
                    )
                )
        receipt_id = _new_receipt_id()
        values = {
            "receipt_id": receipt_id,
            "sender": sender,
            "report_type": report_type,
            "period_id": period_id,
            "version": version,
            "submission_id": header.submission_id,
            "supersedes": header.supersedes,
            "received_at": _now_rfc3339(),
            "sha256": body_sha256,
            "content_fingerprint": fingerprint,
            "idempotency_key": key,
        }
        self.storage.insert_receipt(connection, values, MEDIA_TYPES[style], body)
        logger.info("accepted %s %s version %s from %s as %s", report_type, period_id, version, sender, receipt_id)
        receipt = {
            **{name: values[name] for name in ("receipt_id", "submission_id", "sender", "report_type")},
            "period": period_id,
            "version": version,
            "status": "accepted",
            "received_at": values["received_at"],
            "sha256": body_sha256,
            "supersedes": header.supersedes,
            "duplicate": False,
        }
        return Answer(201, json_bytes(receipt), {"Location": receipt_location(receipt_id)})

    def _purge_old_keys(self) -> None:
        now = time.time()
        if now - self._last_purge < _PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = now
        cutoff = now - self.settings.idempotency_retention_days * 86_400
        purged = self.storage.purge_idempotency_keys(cutoff)
        if purged:
            logger.info(
                "forgot %d idempotency keys older than %d days", purged, self.settings.idempotency_retention_days
            )

    # ------------------------------------------------------------ reading back

    def get_receipt(self, sender: str, receipt_id: str) -> dict[str, Any]:
        row = self.storage.get_receipt(sender, receipt_id)
        if row is None:
            # Same answer for unknown and foreign receipts: no hint that another sender's id exists.
            raise ApiError(404, errors.NOT_FOUND, f"no receipt {receipt_id} for sender {sender}")
        return receipt_json(row, duplicate=False)

    def list_receipts(self, sender: str, report_type: str, period_id: str) -> list[dict[str, Any]]:
        return [
            receipt_json(row, duplicate=False) for row in self.storage.list_receipts(sender, report_type, period_id)
        ]
