"""The submission ledger: what was sent, with which key, and what the central answered.

A submission's payload bytes and Idempotency-Key are frozen in the warehouse before the first
POST; every retry, by any worker, sends those bytes with that key, so the central stores it once.
Only one live submission exists per (sender, report, period, regime, version): a concurrent
freeze loses the unique-constraint race and takes the winner's row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from baocao.connectors.central import RECEIPT_MISMATCH, Answer, Verdict
from baocao.core.errors import FatalError
from baocao.core.states import SubmissionState
from baocao.core.tables import submission_attempts, submissions
from baocao.storage.warehouse import utc_now
from baocao.transforms.signing import SignedPayload

# The ledger's own name for the submission states (callers write `ledger.State.ACCEPTED`).
State = SubmissionState


@dataclass(frozen=True)
class Submission:
    id: int
    report_type: str
    period_id: str
    regime: str
    sender: str
    version: int
    idempotency_key: str
    submission_id: str
    format: str
    content_type: str
    payload: bytes
    sha256: str
    supersedes: str | None
    state: SubmissionState
    attempts: int
    receipt_id: str | None
    receipt: dict[str, Any] | None
    last_error: str | None
    # The detached JWS sent in JWS-Signature with a signed JSON payload (a signed XML payload carries
    # its signature inside); frozen with the payload, so every retry sends the same pair.
    signature: str | None = None
    # The stored report version (`baocao.storage.reports`) the payload was rendered from.
    report_hash: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Submission:
        return cls(
            id=row["id"],
            report_type=row["report_type"],
            period_id=row["period_id"],
            regime=row["regime"],
            sender=row["sender"],
            version=row["version"],
            idempotency_key=row["idempotency_key"],
            submission_id=row["submission_id"],
            format=row["format"],
            content_type=row["content_type"],
            payload=bytes(row["payload"]),
            sha256=row["sha256"],
            supersedes=row["supersedes"],
            state=SubmissionState(row["state"]),
            attempts=row["attempts"],
            receipt_id=row["receipt_id"],
            receipt=json.loads(row["receipt"]) if row["receipt"] else None,
            last_error=row["last_error"],
            signature=row.get("signature"),
            report_hash=row.get("report_hash"),
        )


def live_slot(sender: str, report_type: str, period_id: str, regime: str, version: int) -> str:
    return f"{sender}|{report_type}|{period_id}|{regime}|v{version}"


def get(engine: Engine, submission: int) -> Submission:
    with engine.connect() as connection:
        row = connection.execute(sa.select(submissions).where(submissions.c.id == submission)).mappings().one_or_none()
    if row is None:
        raise FatalError(f"ledger: no submission #{submission}")
    return Submission.from_row(row)


def find_live(engine: Engine, slot: str) -> Submission | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(submissions).where(submissions.c.live_slot == slot)).mappings().one_or_none()
    return Submission.from_row(row) if row else None


def latest_accepted(engine: Engine, sender: str, report_type: str, period_id: str, regime: str) -> Submission | None:
    """The accepted submission with the highest version for this report and period (what a correction supersedes)."""
    query = (
        sa.select(submissions)
        .where(
            submissions.c.sender == sender,
            submissions.c.report_type == report_type,
            submissions.c.period_id == period_id,
            submissions.c.regime == regime,
            submissions.c.state == State.ACCEPTED,
        )
        .order_by(submissions.c.version.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).mappings().one_or_none()
    return Submission.from_row(row) if row else None


def freeze(
    engine: Engine,
    *,
    report_type: str,
    period_id: str,
    regime: str,
    sender: str,
    version: int,
    fmt: str,
    content_type: str,
    render: Callable[[str], bytes | SignedPayload],
    supersedes: str | None = None,
    report_hash: str | None = None,
) -> Submission:
    """The live submission for this slot, rendering and freezing it first if there is none.

    `render(submission_id)` is called only when a new submission is frozen; an existing live one
    (frozen, accepted or failed) is returned untouched so its bytes and key never change. It returns
    the payload, or a `SignedPayload` whose detached signature is frozen alongside.
    """
    slot = live_slot(sender, report_type, period_id, regime, version)
    existing = find_live(engine, slot)
    if existing is not None:
        return existing
    submission_id = str(uuid.uuid4())
    rendered = render(submission_id)
    signed = rendered if isinstance(rendered, SignedPayload) else SignedPayload(rendered)
    payload = signed.payload
    key = f"{sender}:{report_type}:{period_id}:{regime}:v{version}:{uuid.uuid4().hex[:16]}"
    now = utc_now()
    try:
        with engine.begin() as connection:
            new_id = connection.execute(
                sa.insert(submissions)
                .values(
                    report_type=report_type,
                    period_id=period_id,
                    regime=regime,
                    sender=sender,
                    version=version,
                    live_slot=slot,
                    idempotency_key=key,
                    submission_id=submission_id,
                    format=fmt,
                    content_type=content_type,
                    payload=payload,
                    signature=signed.signature,
                    sha256=hashlib.sha256(payload).hexdigest(),
                    supersedes=supersedes,
                    report_hash=report_hash,
                    state=State.FROZEN,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(submissions.c.id)
            ).scalar_one()
    except sa.exc.IntegrityError:
        # Another worker froze this slot first: use its bytes and key.
        winner = find_live(engine, slot)
        if winner is None:
            raise
        return winner
    return get(engine, new_id)


def what_next(state: str, last_error: str | None) -> str | None:
    """What a person should do about a submission left in this state, when the state alone does not say."""
    if state == State.FAILED and (last_error or "").startswith(RECEIPT_MISMATCH):
        return (
            "the central's receipt does not vouch for the bytes we sent; do not resend: give the central's "
            "operators the receipt id (in the error) and the submission's Idempotency-Key (`baocao status`) "
            "and ask which body they hold; until they answer, the ledger and the central disagree"
        )
    return None


def record_answer(engine: Engine, submission: Submission, answer: Answer) -> Submission:
    """Store the central's final answer; a rejection frees the slot for a corrected payload."""
    values: dict[str, Any] = {
        "attempts": submissions.c.attempts + 1,
        "last_status": answer.status,
        "updated_at": utc_now(),
    }
    detail = "; ".join((answer.message, *answer.errors))[:4000]
    if answer.verdict is Verdict.ACCEPTED:
        assert answer.receipt is not None
        values.update(
            state=State.ACCEPTED,
            receipt_id=str(answer.receipt.get("receipt_id")),
            receipt=json.dumps(answer.receipt, ensure_ascii=False),
            last_error=None,
        )
    elif answer.verdict is Verdict.REJECTED:
        values.update(state=State.REJECTED, live_slot=None, last_error=f"{answer.code}: {detail}")
    elif answer.verdict is Verdict.CONFLICT:
        values.update(state=State.FAILED, last_error=f"{answer.code}: {detail}")
    else:
        values.update(last_error=f"HTTP {answer.status} {answer.code or ''}: {detail}")
    with engine.begin() as connection:
        connection.execute(sa.update(submissions).where(submissions.c.id == submission.id).values(**values))
        connection.execute(
            sa.insert(submission_attempts).values(
                submission=submission.id,
                at=utc_now(),
                status=answer.status,
                outcome=answer.verdict.value + (" (replayed)" if answer.replayed else ""),
                detail=detail[:2000],
            )
        )
    return get(engine, submission.id)


def record_unanswered(engine: Engine, submission: Submission, error: str) -> None:
    """The retry budget ran out without a final answer: the submission stays frozen for the next run."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(submissions)
            .where(submissions.c.id == submission.id)
            .values(attempts=submissions.c.attempts + 1, last_error=error[:4000], updated_at=utc_now())
        )
        connection.execute(
            sa.insert(submission_attempts).values(
                submission=submission.id, at=utc_now(), status=None, outcome="NO_ANSWER", detail=error[:2000]
            )
        )


def listing(engine: Engine, report_type: str | None = None, period_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(
        submissions.c.id,
        submissions.c.report_type,
        submissions.c.period_id,
        submissions.c.regime,
        submissions.c.version,
        submissions.c.format,
        submissions.c.state,
        submissions.c.attempts,
        submissions.c.receipt_id,
        submissions.c.report_hash,
        submissions.c.idempotency_key,
        submissions.c.last_error,
        submissions.c.updated_at,
    ).order_by(submissions.c.id)
    if report_type:
        query = query.where(submissions.c.report_type == report_type)
    if period_id:
        query = query.where(submissions.c.period_id == period_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
