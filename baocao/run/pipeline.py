"""The steps of a report run, each callable alone (one Airflow task each) or in sequence (the CLI).

Steps pass references, never data: a batch id, a period id, a ledger id. Large data stays in the
warehouse; each step reads what it needs from there.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from baocao import reports
from baocao.connectors.central import CentralClient, Verdict
from baocao.core import file_locks
from baocao.core.canonical import LOCAL_TIMEZONE, Col
from baocao.core.errors import ConfigurationError, DataQualityError, FatalError, RetriableError, RuleFailure
from baocao.core.periods import Period, parse_period
from baocao.core.registry import Registry, load_registry
from baocao.core.report import Completeness, Report, ReportType
from baocao.core.settings import CompletenessPolicy, Config, SubmissionFormat
from baocao.core.states import BatchState, SubmissionState
from baocao.expectations import dossiers as dossier_rules
from baocao.expectations.runner import SuiteRunner
from baocao.reports.definition import ReportContext
from baocao.run import leftovers
from baocao.run import sources as source_kinds
from baocao.run.faults import AFTER_ANSWER, AFTER_STAGE, BEFORE_POST, crash_point
from baocao.run.sources.petitions import delivered_petition_sources
from baocao.storage import ledger, staging, warehouse
from baocao.storage import reports as stored_reports
from baocao.transforms import diff, signing
from baocao.transforms import render as renderer

log = logging.getLogger(__name__)

PRODUCER = "baocao"


def producer_version() -> str:
    try:
        return version("baocao")
    except PackageNotFoundError:
        return "0+unknown"


def local_now() -> datetime:
    return datetime.now(LOCAL_TIMEZONE).replace(tzinfo=None)


_ENGINES: dict[str, Engine] = {}


def engine_for(config: Config) -> Engine:
    """One engine (and connection pool) per warehouse URL in this process; the schema is checked once.

    A forked worker must not share its parent's pooled connections: engines are keyed by process too.
    """
    key = f"{os.getpid()}|{config.warehouse_url}"
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = warehouse.connect(config.warehouse_url)
    return engine


def suite_runner(config: Config) -> SuiteRunner:
    return SuiteRunner(config.data_dir / "validation")


def staging_dir(config: Config) -> Path:
    return config.data_dir / "staging"


def locks_dir(config: Config) -> Path:
    """Where the run, source and GX locks live: under the data folder every worker shares."""
    return config.data_dir / "locks"


# How long an extract waits for another extract of the same source (another report's run reading it),
# and a validation for another merge of the same batch, before the step ends retriable.
SOURCE_LOCK_WAIT_SECONDS = 1800
BATCH_LOCK_WAIT_SECONDS = 1800


@contextmanager
def run_lock(config: Config, report_type: ReportType | str, period_id: str) -> Iterator[None]:
    """One `baocao run` (or `correct`) of a report and period at a time: a second one ends at once,
    retriable (exit 75), naming the run in progress. The OS releases the lock of a killed run."""
    report = ReportType(report_type).value
    path = locks_dir(config) / f"run-{report}-{period_id}.lock"
    try:
        with file_locks.held(path, note=True):
            yield
    except file_locks.LockBusy as busy:
        raise RetriableError(
            f"another run of {report} {period_id} is in progress ({busy.holder or 'pid unknown'}); try again later"
        ) from None


def runs_in_progress(config: Config) -> list[tuple[str, str]]:
    """The runs holding their report and period's lock now: (`<report>-<period>`, its holder's note)."""
    found = []
    for path in sorted(locks_dir(config).glob("run-*.lock")):
        if file_locks.is_locked(path):
            note = path.read_text(encoding="utf-8", errors="replace").strip()
            found.append((path.name.removeprefix("run-").removesuffix(".lock"), note))
    return found


def period_of(config: Config, report_type: ReportType | str, period_id: str) -> Period:
    return parse_period(period_id, config.report(report_type).regime)


# ---------------------------------------------------------------- extract


def extract(config: Config, source_name: str, now: datetime | None = None, period_id: str | None = None) -> str:
    """Read the source into the warehouse as its kind does (`baocao.run.sources`); returns the batch id.

    Dossiers (pulled, or a commune's export) are staged as a batch for validate; a catalogue export or a
    yearly score workbook is stored whole, or refused whole with what was stored kept; petitions are
    upserted. `period_id` matters only to sources delivered per period (the yearly workbooks).
    """
    source = config.source(source_name)
    engine = engine_for(config)
    lock = leftovers.source_lock(locks_dir(config), source.name)
    try:
        with file_locks.held(lock, wait_seconds=SOURCE_LOCK_WAIT_SECONDS, note=True):
            # What a run of this source that died left (module baocao.run.leftovers), before the watermark is read.
            leftovers.take_up(engine, staging_dir(config), source.name, lambda batch: validate_batch(config, batch))
            extraction = source_kinds.Extraction(config, engine, staging_dir(config), now or local_now(), period_id)
            batch_id = source_kinds.extract(extraction, source)
            crash_point(AFTER_STAGE)  # test hook (baocao.run.faults): a no-op unless $BAOCAO_CRASH_AT names it
            return batch_id
    except file_locks.LockBusy as busy:
        raise RetriableError(
            f"source {source.name}: another extract of it stayed in progress ({busy.holder or 'pid unknown'}) "
            f"for {SOURCE_LOCK_WAIT_SECONDS} s; try again later"
        ) from None


# ---------------------------------------------------------------- validate and merge


@dataclass(frozen=True)
class BatchOutcome:
    """What validate did with a batch: dossiers merged, records quarantined, the rules they broke."""

    batch_id: str
    merged: int
    quarantined: int
    failed_rules: tuple[str, ...] = ()
    data_docs: str | None = None


def validate_batch(config: Config, batch_id: str) -> BatchOutcome:
    """Run the dossier suite on the staged batch; quarantine failures; merge the rest."""
    if not staging.valid_batch_id(batch_id):
        raise FatalError(f"invalid batch id {batch_id!r}")
    engine = engine_for(config)
    batch = warehouse.batch_summary(engine, batch_id)
    if not source_kinds.kind_named(batch["kind"]).storage.validated_by_batch:
        # Catalogues, score sheets and petitions were stored by extract: no dossiers here to check or merge.
        return BatchOutcome(batch_id, 0, batch["quarantined"])
    staged_file = staging.batch_file(staging_dir(config), batch_id)
    # The staged file's lock: one validation and merge of a batch at a time (a task retried while the
    # first attempt runs, a stuck batch taken up by another run); a live holder marks it in progress.
    try:
        held = file_locks.lock_open_file(staged_file, wait_seconds=BATCH_LOCK_WAIT_SECONDS)
    except file_locks.LockBusy:
        raise RetriableError(
            f"source {batch['source']} batch {batch_id}: another process stayed merging it for "
            f"{BATCH_LOCK_WAIT_SECONDS} s; try again later"
        ) from None
    try:
        return _validate_staged(config, engine, batch_id, staged_file, present=held is not None)
    finally:
        if held is not None:
            os.close(held)


def _validate_staged(config: Config, engine: Engine, batch_id: str, staged_file: Path, present: bool) -> BatchOutcome:
    batch = warehouse.batch_summary(engine, batch_id)  # read again, under the staged file's lock
    if batch["state"] == BatchState.MERGED:
        # A rerun of the task after the merge committed: nothing is left to check or to write.
        return BatchOutcome(batch_id, batch["merged"], batch["quarantined"])
    if batch["state"] == BatchState.ABANDONED:
        # Retired by a later run of its source (baocao.run.leftovers): that run's pull read its window again.
        log.warning("source %s: batch %s was retired (ABANDONED); nothing merged", batch["source"], batch_id)
        return BatchOutcome(batch_id, 0, batch["quarantined"] or 0)
    registry = load_registry(config.agencies_file)
    if not present or not staged_file.exists():
        raise FatalError(f"source {batch['source']} batch {batch_id}: {staged_file} is gone (rerun extract)")
    outcome = suite_runner(config).validate_parquet(
        staged_file,
        suite_name=dossier_rules.SUITE_NAME,
        expectations=dossier_rules.dossier_suite(registry.codes),
        key_column=Col.CODE,
        run_name=batch_id,
    )
    if outcome.incomplete_rules:
        # Not every failing record could be named: merging would let unnamed bad records through.
        raise DataQualityError(
            f"source {batch['source']} batch {batch_id}",
            [
                RuleFailure(rule, "(whole batch)", "too many failing records to list; batch held back")
                for rule in outcome.incomplete_rules
            ],
        )
    failures = [(f.key, f.rule, f.detail) for f in outcome.failures]
    quarantined = warehouse.record_quarantine(engine, batch_id, batch["source"], failures, stage="validate")
    for failure in outcome.failures[:20]:
        log.warning(
            "source %s: dossier %s quarantined: %s (%s)", batch["source"], failure.key, failure.rule, failure.detail
        )
    merged = warehouse.merge_batch(engine, batch_id, staged_file)
    log.info("batch %s: %d merged, %d quarantined; Data Docs: %s", batch_id, merged, quarantined, outcome.docs_index)
    return BatchOutcome(
        batch_id, merged, quarantined, tuple(sorted(set(outcome.failed_rules))), str(outcome.docs_index)
    )


# ---------------------------------------------------------------- aggregate and check


@dataclass(frozen=True)
class Aggregated:
    """The report a period's aggregation stored: its version (the hash of its content) and size."""

    report_type: str
    period_id: str
    content_hash: str
    lines: int


def aggregate(config: Config, report_type: ReportType | str, period_id: str) -> Aggregated:
    """Read the report's inputs from the warehouse, assemble the report and store it as the period's
    current version, with the batches and watermarks it read (`baocao.storage.reports`)."""
    definition = reports.definition(report_type)
    period = period_of(config, definition.report_type, period_id)
    engine = engine_for(config)
    settings = config.report(definition.report_type)
    with engine.connect() as connection:
        context = ReportContext(
            connection=connection,
            period=period,
            registry=registry_for(config),
            province_code=config.province_code,
            sources=settings.sources,
            petition_sources=delivered_petition_sources(config, engine, definition.report_type),
        )
        inputs = definition.read_inputs(context)
        read = stored_reports.sources_read(connection, settings.sources)
    body, found = definition.assemble(inputs, context)  # assembling checks every input
    report = Report(definition.report_type, period, definition.tables(body), found)
    digest = stored_reports.store(engine, report, read, at=warehouse.utc_now())
    lines = sum(len(table) for table in report.tables.values())
    log.info("%s %s: %d line(s) stored as version %s", definition.report_type, period, lines, digest[:12])
    return Aggregated(definition.report_type.value, period.id, digest, lines)


def load_report(
    config: Config, report_type: ReportType | str, period_id: str, content_hash: str | None = None
) -> stored_reports.StoredReport:
    """The period's stored report (its current version, or the version `content_hash`), checked against
    its hash. A period never aggregated is refused (FatalError)."""
    definition = reports.definition(report_type)
    period = period_of(config, definition.report_type, period_id)
    return stored_reports.load(engine_for(config), definition.report_type, period, content_hash)


@dataclass(frozen=True)
class ReportCheck:
    """A stored report the suite approved: its version, the lines checked and the Data Docs page."""

    report_type: str
    period_id: str
    content_hash: str
    rows: int
    data_docs: str


def validate_report(config: Config, report_type: ReportType | str, period_id: str) -> ReportCheck:
    """Run the report suite on the stored report; a failed rule blocks publication with the rule, the row
    and both values. Approved (and complete enough for the report's policy), the version is marked
    validated: render sends that version and no other."""
    definition = reports.definition(report_type)
    stored = load_report(config, definition.report_type, period_id)
    report = stored.report
    body = definition.from_tables(report.tables)
    frame = definition.check_frame(body)
    outcome = suite_runner(config).validate_frame(
        frame,
        suite_name=definition.suite_name,
        expectations=definition.suite(),
        key_column=definition.row_label,
        run_name=f"{definition.report_type}-{report.period.id}-{local_now():%Y%m%dT%H%M%S}",
    )
    if not outcome.success:
        raise DataQualityError(
            f"{definition.report_type} {report.period.id}",
            [RuleFailure(f.rule, f.key, f.detail) for f in outcome.failures],
        )
    check_completeness(config, definition.report_type, report.period, report.completeness)
    stored_reports.mark_validated(engine_for(config), stored.content_hash, warehouse.utc_now(), str(outcome.docs_index))
    return ReportCheck(
        definition.report_type.value, report.period.id, stored.content_hash, len(frame), str(outcome.docs_index)
    )


def check_completeness(config: Config, report_type: ReportType | str, period: Period, found: Completeness) -> None:
    """Apply the report's completeness policy: publish with the missing list, wait, or fail."""
    if not found.missing:
        return
    policy = config.report(report_type).completeness
    shown = ", ".join(found.missing[:20]) + (f" and {len(found.missing) - 20} more" if len(found.missing) > 20 else "")
    message = (
        f"{report_type} {period.id}: {len(found.missing)} of {found.expected} expected agencies "
        f"reported nothing: {shown}"
    )
    if policy is CompletenessPolicy.WAIT:
        raise RetriableError(message + " (policy: wait)")
    if policy is CompletenessPolicy.FAIL:
        raise FatalError(message + " (policy: fail)")
    log.warning("%s (policy: publish with the missing list)", message)


def validated_report(
    config: Config, report_type: ReportType | str, period_id: str, content_hash: str | None = None
) -> stored_reports.StoredReport:
    """The stored version to send: `content_hash` (what this run validated), else the period's current
    version; refused (FatalError, saying why) unless the report suite approved exactly that content."""
    stored = load_report(config, report_type, period_id, content_hash)
    if not stored.validated:
        what = f"{report_type} {stored.report.period.id}"
        raise FatalError(
            f"{what}: the stored report {stored.content_hash[:12]} (aggregated {stored.aggregated_at:%Y-%m-%d %H:%M} "
            "UTC) has not passed the report suite: run validate_report (or `baocao run`) before rendering"
        )
    return stored


# ---------------------------------------------------------------- render and publish


@dataclass(frozen=True)
class Rendered:
    submission: ledger.Submission | None
    payload: bytes
    path: Path
    signature: str | None = None  # the detached JWS of a signed JSON payload (written beside it as .jws)


def _render_payload(
    config: Config,
    stored: stored_reports.StoredReport,
    submission_id: str,
    version: int,
    correction: tuple[str, str] | None = None,
) -> bytes:
    """The submission's bytes from the stored report; `correction` = (receipt superseded, reason) for a
    version after the first."""
    report = stored.report
    definition = reports.definition(report.report_type)
    settings = config.report(report.report_type)
    envelope = renderer.Envelope(
        submission_id=submission_id,
        report_type=report.report_type.value,
        sender_code=config.province_code,
        sender_name=config.province_name,
        receiver_code=settings.receiver_code,
        receiver_name=settings.receiver_name,
        period=report.period,
        version=version,
        generated_at=datetime.now(LOCAL_TIMEZONE).replace(microsecond=0),
        producer_name=PRODUCER,
        producer_version=producer_version(),
        completeness=report.completeness,
        supersedes=correction[0] if correction else None,
        correction_reason=correction[1] if correction else None,
    )
    body = definition.from_tables(report.tables)
    if settings.format is SubmissionFormat.XML:
        return renderer.render_xml(
            envelope, definition.body_element, lambda element: definition.xml_body(element, body)
        )
    return renderer.render_json(envelope, definition.body_key, definition.json_body(body))


def _signed_payload(
    config: Config,
    stored: stored_reports.StoredReport,
    submission_id: str,
    version: int,
    correction: tuple[str, str] | None = None,
) -> signing.SignedPayload:
    """The rendered payload, signed when [central] names a signing key: XML carries its signature, JSON
    gets the detached JWS beside it. Called inside `ledger.freeze`, so what is frozen is what was signed."""
    payload = _render_payload(config, stored, submission_id, version, correction)
    return signing.sign_payload(payload, config.report(stored.report.report_type).format.value, config.central.signing)


def _write_rendered(path: Path, payload: bytes, signature: str | None) -> None:
    path.write_bytes(payload)
    if signature is not None:
        path.with_name(path.name + ".jws").write_text(signature, encoding="ascii")


def _output_path(
    config: Config, report_type: str, period_id: str, version: int, fmt: SubmissionFormat, tag: str
) -> Path:
    folder = config.data_dir / "submissions" / report_type / period_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"v{version}-{tag}.{fmt.value}"


def render(
    config: Config,
    report_type: ReportType | str,
    period_id: str,
    dry_run: bool = False,
    content_hash: str | None = None,
) -> Rendered:
    """Render the validated stored report (`content_hash`: the version this run validated; by default
    the period's current one), check it against the schema, and (unless a dry run) freeze it into the
    ledger. A live submission already frozen for this period is returned as it is: its bytes never change.
    """
    stored = validated_report(config, report_type, period_id, content_hash)
    return _rendered(config, stored, 1, dry_run)


def _rendered(
    config: Config,
    stored: stored_reports.StoredReport,
    version: int,
    dry_run: bool,
    correction: tuple[str, str] | None = None,
) -> Rendered:
    """Version `version`, signed, written out: as the dry run's file, or frozen in the ledger first."""
    report_type, period = stored.report.report_type, stored.report.period
    settings = config.report(report_type)
    if dry_run:
        signed = _signed_payload(config, stored, str(uuid.uuid4()), version, correction)
        path = _output_path(config, report_type.value, period.id, version, settings.format, "dry-run")
        _write_rendered(path, signed.payload, signed.signature)
        return Rendered(None, signed.payload, path, signed.signature)
    submission = ledger.freeze(
        engine_for(config),
        report_type=report_type.value,
        period_id=period.id,
        regime=period.regime.value,
        sender=config.province_code,
        version=version,
        fmt=settings.format.value,
        content_type=renderer.XML_CONTENT_TYPE
        if settings.format is SubmissionFormat.XML
        else renderer.JSON_CONTENT_TYPE,
        render=lambda submission_id: _signed_payload(config, stored, submission_id, version, correction),
        supersedes=correction[0] if correction else None,
        report_hash=stored.content_hash,
    )
    path = _output_path(config, report_type.value, period.id, version, settings.format, submission.submission_id)
    _write_rendered(path, submission.payload, submission.signature)
    return Rendered(submission, submission.payload, path, submission.signature)


def publish(config: Config, submission_number: int) -> dict[str, Any]:
    """Send the frozen submission (same bytes, same key) and store the answer; returns the receipt."""
    engine = engine_for(config)
    submission = ledger.get(engine, submission_number)
    if submission.state == SubmissionState.ACCEPTED:
        log.info("submission #%d already accepted (receipt %s): nothing sent", submission.id, submission.receipt_id)
        assert submission.receipt is not None
        return submission.receipt
    if submission.state != SubmissionState.FROZEN:
        hint = ledger.what_next(submission.state, submission.last_error)
        raise FatalError(
            f"submission #{submission.id} is {submission.state}: {submission.last_error}"
            + (f" — what next: {hint}" if hint else "")
        )
    client = CentralClient(config.central)
    crash_point(BEFORE_POST)  # test hook (baocao.faults): a no-op unless $BAOCAO_CRASH_AT names it
    try:
        answer = client.submit(
            submission.payload, submission.idempotency_key, submission.content_type, signature=submission.signature
        )
    except RetriableError as error:
        ledger.record_unanswered(engine, submission, str(error))
        raise
    crash_point(AFTER_ANSWER)
    stored = ledger.record_answer(engine, submission, answer)
    if answer.verdict is Verdict.ACCEPTED:
        assert stored.receipt is not None
        log.info(
            "submission #%d accepted: receipt %s%s",
            stored.id,
            stored.receipt_id,
            " (replayed)" if answer.replayed else "",
        )
        return stored.receipt
    problems = "; ".join(answer.errors[:10])
    hint = ledger.what_next(stored.state, stored.last_error)
    raise FatalError(
        f"central answered HTTP {answer.status} {answer.code or ''} for submission #{stored.id} "
        f"({stored.report_type} {stored.period_id}): {answer.message}{' — ' + problems if problems else ''}"
        + (f" — what next: {hint}" if hint else "")
    )


def publish_pending(config: Config, report_type: ReportType | str | None = None) -> list[dict[str, Any]]:
    """Publish every FROZEN submission, oldest first: the backlog an outage of the central left.

    Each goes out with its frozen bytes and key, so one the central already holds is only replayed.
    A retriable fault stops the drain (the central is not answering; the rest stay frozen for the
    next run). A final refusal of one submission does not stop the others; it is raised at the end
    (FatalError, a person must look), before a retriable stop. Returns the receipts accepted.
    """
    engine = engine_for(config)
    pending = [
        row["id"]
        for row in ledger.listing(engine, ReportType(report_type).value if report_type else None)
        if row["state"] == SubmissionState.FROZEN
    ]
    receipts: list[dict[str, Any]] = []
    refused: list[str] = []
    stopped: RetriableError | None = None
    for position, number in enumerate(pending):
        try:
            receipts.append(publish(config, number))
        except RetriableError as error:
            stopped = error
            log.warning("backlog: the central is not answering; %d submission(s) left frozen", len(pending) - position)
            break
        except FatalError as error:
            refused.append(str(error))
    log.info("backlog: %d of %d frozen submission(s) accepted", len(receipts), len(pending))
    left = f"; {len(pending) - len(receipts) - len(refused)} left frozen: {stopped}" if stopped else ""
    if refused:
        raise FatalError(f"backlog: {len(refused)} submission(s) refused: " + " | ".join(refused) + left)
    if stopped is not None:
        raise RetriableError(
            f"backlog: {len(receipts)} of {len(pending)} accepted{left}", retry_after=stopped.retry_after
        )
    return receipts


# ---------------------------------------------------------------- whole run


@dataclass(frozen=True)
class Prepared:
    """Extract → validate → aggregate → check: what each step did."""

    batches: list[BatchOutcome]
    aggregated: Aggregated
    checked: ReportCheck


def _prepare(config: Config, report_type: ReportType, period_id: str, pull: bool = True) -> Prepared:
    """The report stored and validated, from fresh data; without `pull` the sources are not read and
    what the warehouse holds is aggregated again."""
    sources = config.report(report_type).sources if pull else ()
    batches = [validate_batch(config, extract(config, name, period_id=period_id)) for name in sources]
    aggregated = aggregate(config, report_type, period_id)
    checked = validate_report(config, report_type, period_id)
    return Prepared(batches, aggregated, checked)


@dataclass(frozen=True)
class RunResult:
    prepared: Prepared
    payload: Path
    receipt: dict[str, Any] | None  # None for a dry run


def run_report(config: Config, report_type: ReportType | str, period_id: str, dry_run: bool = False) -> RunResult:
    """Every step in order, as the DAG runs them: extract → validate → aggregate → check → render → publish."""
    report_type = ReportType(report_type)
    period_id = period_of(config, report_type, period_id).id  # a bad period fails before anything is pulled
    with run_lock(config, report_type, period_id):
        prepared = _prepare(config, report_type, period_id)
        rendered = render(config, report_type, period_id, dry_run=dry_run, content_hash=prepared.checked.content_hash)
        receipt = None
        if not dry_run:
            assert rendered.submission is not None
            receipt = publish(config, rendered.submission.id)
    return RunResult(prepared, rendered.path, receipt)


@dataclass(frozen=True)
class Correction:
    base: ledger.Submission  # the accepted version being corrected
    rendered: Rendered  # version n+1 (frozen, or the dry run's file)
    changes: list[diff.Change]
    receipt: dict[str, Any] | None = None


def correct(
    config: Config,
    report_type: ReportType | str,
    period_id: str,
    reason: str,
    dry_run: bool = False,
    show: Callable[[ledger.Submission, list[diff.Change]], None] | None = None,
    pull: bool = True,
) -> Correction:
    """Version n+1 of an accepted report: fresh data, `Supersedes` = the latest receipt, and the reason.

    The changed cells (old → new) against the accepted version are handed to `show` before anything
    is sent; nothing changed means no correction (FatalError). A correction already frozen by an
    earlier, interrupted run is sent as it is. The dry run does everything but freeze and POST.
    Without `pull`, the stored dossiers are aggregated again without reading the sources (after a
    registry change, say).
    """
    report_type = ReportType(report_type)
    if not reason.strip():
        raise ConfigurationError("a correction needs its reason (--reason)")
    period = period_of(config, report_type, period_id)
    with run_lock(config, report_type, period.id):
        return _correct(config, report_type, period, reason, dry_run, show, pull)


def _correct(
    config: Config,
    report_type: ReportType,
    period: Period,
    reason: str,
    dry_run: bool,
    show: Callable[[ledger.Submission, list[diff.Change]], None] | None,
    pull: bool,
) -> Correction:
    settings = config.report(report_type)
    engine = engine_for(config)
    base = ledger.latest_accepted(engine, config.province_code, report_type.value, period.id, period.regime.value)
    if base is None or base.receipt_id is None:
        raise FatalError(
            f"{report_type.value} {period.id}: no accepted version to correct (publish it first with `baocao run`)"
        )
    version = base.version + 1
    correction = (base.receipt_id, reason.strip())
    slot = ledger.live_slot(config.province_code, report_type.value, period.id, period.regime.value, version)
    pending = None if dry_run else ledger.find_live(engine, slot)
    if pending is None:
        checked = _prepare(config, report_type, period.id, pull=pull).checked
        stored = validated_report(config, report_type, period.id, checked.content_hash)
        candidate = _render_payload(config, stored, str(uuid.uuid4()), version, correction)
        changes = diff.diff(base.payload, candidate, settings.format.value)
        if not changes:
            raise FatalError(
                f"{report_type.value} {period.id}: nothing changed since the accepted version v{base.version} "
                f"(receipt {base.receipt_id}): no correction sent"
            )
    else:
        # Frozen by an interrupted run: its bytes are sent as they are (the stored version it names).
        stored = validated_report(config, report_type, period.id, pending.report_hash)
    rendered = _rendered(config, stored, version, dry_run, correction)
    changes = diff.diff(base.payload, rendered.payload, settings.format.value)  # what is actually sent
    if show is not None:
        show(base, changes)
    if dry_run:
        return Correction(base, rendered, changes)
    assert rendered.submission is not None
    log.info(
        "%s %s: correction v%d supersedes receipt %s, %d cells changed",
        report_type.value,
        period.id,
        version,
        base.receipt_id,
        len(changes),
    )
    return Correction(base, rendered, changes, publish(config, rendered.submission.id))


def report_summary(
    config: Config, report_type: ReportType | str, period_id: str, content_hash: str | None = None
) -> dict[str, Any]:
    """The figures of the stored report (its current version, or `content_hash`) and its completeness."""
    stored = load_report(config, report_type, period_id, content_hash)
    definition = reports.definition(stored.report.report_type)
    values = definition.summary(definition.from_tables(stored.report.tables))
    found = stored.report.completeness
    values["completeness"] = {"expected": found.expected, "reported": found.reported, "missing": len(found.missing)}
    return values


@dataclass(frozen=True)
class Exported:
    """The stored report an export writes, and the accepted submission it was sent as (if any)."""

    stored: stored_reports.StoredReport
    accepted: ledger.Submission | None

    def describe(self) -> str:
        version = f"stored report {self.stored.content_hash[:12]}"
        if self.accepted is not None:
            return f"{version}, accepted as v{self.accepted.version} (receipt {self.accepted.receipt_id})"
        state = "validated" if self.stored.validated else "not validated"
        return f"{version} ({state}, not accepted by the central)"


def report_for_export(config: Config, report_type: ReportType | str, period_id: str) -> Exported:
    """What an export of the period writes: the version the central accepted last, so the export equals
    what was accepted; for a period not accepted yet, the current stored version. A period never
    aggregated is refused."""
    definition = reports.definition(report_type)
    period = period_of(config, definition.report_type, period_id)
    engine = engine_for(config)
    accepted = ledger.latest_accepted(
        engine, config.province_code, definition.report_type.value, period.id, period.regime.value
    )
    if accepted is not None and accepted.report_hash is not None:
        return Exported(load_report(config, definition.report_type, period.id, accepted.report_hash), accepted)
    return Exported(load_report(config, definition.report_type, period.id), None)


def registry_for(config: Config) -> Registry:
    return load_registry(config.agencies_file)
