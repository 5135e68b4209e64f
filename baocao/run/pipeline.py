"""The steps of a report run, each callable alone (one Airflow task each) or in sequence (the CLI).

Steps pass references, never data: a batch id, a period id, a ledger id. Large data stays in the
warehouse; each step reads what it needs from there.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from baocao.connectors.central import CentralClient, Verdict
from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE, Col
from baocao.core.errors import ConfigurationError, DataQualityError, FatalError, RetriableError, RuleFailure
from baocao.core.layouts.online_services import COUNT_COLUMNS as ONLINE_COUNTS
from baocao.core.layouts.service_index import DOSSIERS_IN_PERIOD
from baocao.core.layouts.tthc import COUNT_COLUMNS
from baocao.core.periods import Period, parse_period
from baocao.core.registry import Registry, load_registry
from baocao.core.report import Completeness, ReportType
from baocao.core.settings import CompletenessPolicy, Config, SubmissionFormat
from baocao.expectations import dossiers as dossier_rules
from baocao.expectations import tthc_report as report_rules
from baocao.expectations.runner import SuiteRunner
from baocao.run import file_sources, yearly
from baocao.run import sources as source_kinds
from baocao.run.faults import AFTER_ANSWER, BEFORE_POST, crash_point
from baocao.storage import ledger, staging, warehouse
from baocao.transforms import diff, signing
from baocao.transforms import render as renderer
from baocao.transforms.online_services import assemble_online_services, online_services_query
from baocao.transforms.service_index import assemble_service_index, input_columns, ruleset_for, service_index_query
from baocao.transforms.service_index import onto_units as service_index_onto_units
from baocao.transforms.tthc import assemble_tthc_report, completeness, moved_units, tthc_rows_query

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


def period_of(config: Config, report_type: ReportType | str, period_id: str) -> Period:
    return parse_period(period_id, config.report(report_type).regime)


# ---------------------------------------------------------------- extract


def extract(config: Config, source_name: str, now: datetime | None = None, period_id: str | None = None) -> str:
    """Read the source into the warehouse as its kind does (`baocao.run.sources`); returns the batch id.

    Dossiers (pulled, or a commune's export) are staged as a batch for validate; a catalogue export or a
    yearly score workbook is stored whole, or refused whole with what was stored kept; petitions are
    upserted. `period_id` matters only to sources delivered per period (the yearly workbooks).
    """
    extraction = source_kinds.Extraction(config, engine_for(config), staging_dir(config), now or local_now(), period_id)
    return source_kinds.extract(extraction, config.source(source_name))


# ---------------------------------------------------------------- validate and merge


def validate_batch(config: Config, batch_id: str) -> dict[str, Any]:
    """Run the dossier suite on the staged batch; quarantine failures; merge the rest."""
    if not staging.valid_batch_id(batch_id):
        raise FatalError(f"invalid batch id {batch_id!r}")
    engine = engine_for(config)
    batch = warehouse.batch_summary(engine, batch_id)
    if not source_kinds.kind_named(batch["kind"]).storage.validated_by_batch:
        # Catalogues, score sheets and petitions were stored by extract: no dossiers here to check or merge.
        return {"batch_id": batch_id, "merged": 0, "quarantined": batch["quarantined"], "failed_rules": []}
    if batch["state"] == "MERGED":
        # A rerun of the task after the merge committed: nothing is left to check or to write.
        done = {"merged": batch["merged"], "quarantined": batch["quarantined"], "failed_rules": []}
        return {"batch_id": batch_id, **done}
    registry = load_registry(config.agencies_file)
    staged_file = staging.batch_file(staging_dir(config), batch_id)
    if not staged_file.exists():
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
    return {
        "batch_id": batch_id,
        "merged": merged,
        "quarantined": quarantined,
        "failed_rules": sorted(set(outcome.failed_rules)),
        "data_docs": str(outcome.docs_index),
    }


# ---------------------------------------------------------------- aggregate


def aggregate(config: Config, report_type: ReportType | str, period_id: str) -> dict[str, Any]:
    """Group the period's dossiers in the warehouse and store the report rows (replacing earlier ones)."""
    report_type = ReportType(report_type)
    if _definition(report_type) is not None:
        report, _, period = load_report(config, report_type, period_id)  # assembling checks every input
        if isinstance(report, tuple):
            agency_rows = len(report[0])
        elif report_type is ReportType.SERVICE_INDEX:  # one line per metric, group and total: count agencies
            agency_rows = int(((report["kind"] == "AGENCY") & (report["line"] == "TOTAL")).sum())
        else:
            agency_rows = len(report)
        log.info("%s %s: %d agency row(s) assembled", report_type, period, agency_rows)
        return {"report_type": report_type.value, "period_id": period.id, "rows": agency_rows}
    if report_type is not ReportType.TTHC_RESULTS:
        raise ConfigurationError(f"report {report_type} is not implemented yet")
    period = period_of(config, report_type, period_id)
    engine = engine_for(config)
    registry = load_registry(config.agencies_file)
    levels = registry.level_of()
    with engine.connect() as connection:
        grouped = pd.DataFrame(connection.execute(tthc_rows_query(period)).mappings().all())
    computed_at = warehouse.utc_now()
    rows = []
    if len(grouped):
        report = assemble_tthc_report(grouped, registry, period)
        for row in report[report["kind"] == "ROW"].to_dict("records"):
            rows.append(
                {
                    "period_id": period.id,
                    "regime": period.regime.value,
                    "agency": row["agency"],
                    "field": row["field"],
                    "level": levels[row["agency"]].value,
                    "field_name": row["field_name"],
                    **{name: int(row[name]) for name in COUNT_COLUMNS},
                    "on_time_rate": row["on_time_rate"],
                    "computed_at": computed_at,
                }
            )
    warehouse.replace_report_rows(engine, tables.report_tthc_rows, period.id, period.regime.value, rows)
    log.info("TTHC_RESULTS %s: %d row(s) aggregated", period, len(rows))
    return {"report_type": report_type.value, "period_id": period.id, "rows": len(rows)}


def _definition(report_type: ReportType | str) -> yearly.YearlyReport | None:
    """How a report other than TTHC_RESULTS is assembled, checked and rendered (None for TTHC_RESULTS)."""
    report_type = ReportType(report_type)
    if report_type is ReportType.ONLINE_SERVICES:
        return yearly.online_services_definition()
    if report_type is ReportType.SERVICE_INDEX:
        return yearly.service_index_definition()
    return yearly.YEARLY_REPORTS.get(report_type)


def load_report(config: Config, report_type: ReportType | str, period_id: str) -> tuple[Any, Completeness, Period]:
    """The stored report rows, assembled into sections and totals (pure, cheap)."""
    period = period_of(config, report_type, period_id)
    engine = engine_for(config)
    if ReportType(report_type) is ReportType.ONLINE_SERVICES:
        with engine.connect() as connection:
            grouped = pd.DataFrame(connection.execute(online_services_query(period)).mappings().all())
        if grouped.empty:
            grouped = pd.DataFrame(columns=["agency", *ONLINE_COUNTS])
        report = assemble_online_services(grouped, period)
        registry = load_registry(config.agencies_file)
        agencies = report[report["kind"] == "AGENCY"]
        served = pd.DataFrame({"agency": list(agencies.loc[agencies["dossiers_total"] > 0, "agency"])})
        return report, completeness(served, registry, period), period
    if ReportType(report_type) is ReportType.SERVICE_INDEX:
        ruleset = ruleset_for(period)  # the ruleset version in effect for the period (a file, not code)
        # Petition metrics count only when a configured petition source has delivered an export.
        petitions = file_sources.delivered_petition_sources(config, engine, ReportType.SERVICE_INDEX)
        registry = load_registry(config.agencies_file)
        # Counts still recorded under a merged or ended agency go to the unit carrying its work at the
        # period's end (matched with its catalogue in the query, moved after), before assembly and
        # completeness (so the successor has reported).
        units = moved_units(registry, period, period.end)
        with engine.connect() as connection:
            query = service_index_query(period, ruleset, petition_sources=petitions, units=units)
            inputs = pd.DataFrame(connection.execute(query).mappings().all())
        if inputs.empty:
            inputs = pd.DataFrame(columns=list(input_columns(ruleset, petitions=bool(petitions))))
        inputs = service_index_onto_units(inputs, registry, period, period.end)
        report = assemble_service_index(inputs, period, province_code=config.province_code, ruleset=ruleset)
        served = pd.DataFrame({"agency": list(inputs.loc[inputs[DOSSIERS_IN_PERIOD] > 0, "agency"])})
        return report, completeness(served, registry, period), period
    if yearly.is_yearly(report_type):
        definition = yearly.YEARLY_REPORTS[ReportType(report_type)]
        scores = yearly.load_scores(engine, definition.report_type, period)
        registry = load_registry(config.agencies_file)
        return definition.assemble(scores, period), yearly.completeness_of(scores, registry, period), period
    table = tables.report_tthc_rows
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(
                sa.select(table).where(table.c.period_id == period.id, table.c.regime == period.regime.value)
            )
            .mappings()
            .all(),
            columns=[c.name for c in table.columns],
        )
    registry = load_registry(config.agencies_file)
    return assemble_tthc_report(rows, registry, period), completeness(rows, registry, period), period


def validate_report(config: Config, report_type: ReportType | str, period_id: str) -> dict[str, Any]:
    """Run the report suite; a failed rule blocks publication with the rule, row and both values."""
    report, found, period = load_report(config, report_type, period_id)
    definition = _definition(report_type)
    if definition is not None:
        frame, rules, suite_name, label = (
            definition.check_frame(report),
            definition.suite(),
            definition.suite_name,
            definition.row_label,
        )
    else:
        frame, rules = report_rules.report_check_frame(report), report_rules.report_suite()
        suite_name, label = report_rules.SUITE_NAME, report_rules.ROW_LABEL
    outcome = suite_runner(config).validate_frame(
        frame,
        suite_name=suite_name,
        expectations=rules,
        key_column=label,
        run_name=f"{report_type}-{period.id}-{local_now():%Y%m%dT%H%M%S}",
    )
    if not outcome.success:
        raise DataQualityError(
            f"{report_type} {period.id}",
            [RuleFailure(f.rule, f.key, f.detail) for f in outcome.failures],
        )
    check_completeness(config, report_type, period, found)
    return {"rows": len(frame), "data_docs": str(outcome.docs_index)}


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


# ---------------------------------------------------------------- render and publish


@dataclass(frozen=True)
class Rendered:
    submission: ledger.Submission | None
    payload: bytes
    path: Path
    signature: str | None = None  # the detached JWS of a signed JSON payload (written beside it as .jws)


def _render_payload(
    config: Config,
    report_type: ReportType,
    period_id: str,
    submission_id: str,
    version: int,
    correction: tuple[str, str] | None = None,
) -> bytes:
    """The submission's bytes; `correction` = (receipt superseded, reason) for a version after the first."""
    report, found, period = load_report(config, report_type, period_id)
    settings = config.report(report_type)
    envelope = renderer.Envelope(
        submission_id=submission_id,
        report_type=report_type.value,
        sender_code=config.province_code,
        sender_name=config.province_name,
        receiver_code=settings.receiver_code,
        receiver_name=settings.receiver_name,
        period=period,
        version=version,
        generated_at=datetime.now(LOCAL_TIMEZONE).replace(microsecond=0),
        producer_name=PRODUCER,
        producer_version=producer_version(),
        completeness=found,
        supersedes=correction[0] if correction else None,
        correction_reason=correction[1] if correction else None,
    )
    definition = _definition(report_type)
    if definition is not None:
        if settings.format is SubmissionFormat.XML:
            return renderer.render_xml(
                envelope, definition.body_element, lambda body: definition.xml_body(body, report)
            )
        return renderer.render_json(envelope, definition.body_key, definition.json_body(report))
    if settings.format is SubmissionFormat.XML:
        return renderer.render_tthc_xml(envelope, report)
    return renderer.render_tthc_json(envelope, report)


def _signed_payload(
    config: Config,
    report_type: ReportType,
    period_id: str,
    submission_id: str,
    version: int,
    correction: tuple[str, str] | None = None,
) -> signing.SignedPayload:
    """The rendered payload, signed when [central] names a signing key: XML carries its signature, JSON
    gets the detached JWS beside it. Called inside `ledger.freeze`, so what is frozen is what was signed."""
    payload = _render_payload(config, report_type, period_id, submission_id, version, correction)
    return signing.sign_payload(payload, config.report(report_type).format.value, config.central.signing)


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


def render(config: Config, report_type: ReportType | str, period_id: str, dry_run: bool = False) -> Rendered:
    """Render, check against the schema, and (unless a dry run) freeze into the ledger.

    A live submission already frozen for this period is returned as it is: its bytes never change.
    """
    report_type = ReportType(report_type)
    return _rendered(config, report_type, period_of(config, report_type, period_id), 1, dry_run)


def _rendered(
    config: Config,
    report_type: ReportType,
    period: Period,
    version: int,
    dry_run: bool,
    correction: tuple[str, str] | None = None,
) -> Rendered:
    """Version `version`, signed, written out: as the dry run's file, or frozen in the ledger first."""
    settings = config.report(report_type)
    if dry_run:
        signed = _signed_payload(config, report_type, period.id, str(uuid.uuid4()), version, correction)
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
        render=lambda submission_id: _signed_payload(
            config, report_type, period.id, submission_id, version, correction
        ),
        supersedes=correction[0] if correction else None,
    )
    path = _output_path(config, report_type.value, period.id, version, settings.format, submission.submission_id)
    _write_rendered(path, submission.payload, submission.signature)
    return Rendered(submission, submission.payload, path, submission.signature)


def publish(config: Config, submission_number: int) -> dict[str, Any]:
    """Send the frozen submission (same bytes, same key) and store the answer; returns the receipt."""
    engine = engine_for(config)
    submission = ledger.get(engine, submission_number)
    if submission.state == ledger.State.ACCEPTED:
        log.info("submission #%d already accepted (receipt %s): nothing sent", submission.id, submission.receipt_id)
        assert submission.receipt is not None
        return submission.receipt
    if submission.state != ledger.State.FROZEN:
        raise FatalError(f"submission #{submission.id} is {submission.state}: {submission.last_error}")
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
    raise FatalError(
        f"central answered HTTP {answer.status} {answer.code or ''} for submission #{stored.id} "
        f"({stored.report_type} {stored.period_id}): {answer.message}{' — ' + problems if problems else ''}"
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
        if row["state"] == ledger.State.FROZEN
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


def _prepare(config: Config, report_type: ReportType, period_id: str, pull: bool = True) -> dict[str, Any]:
    """Extract → validate → aggregate → check: the report's rows in the warehouse, fresh and checked.

    Without `pull` the sources are not read: what the warehouse holds is aggregated again."""
    sources = config.report(report_type).sources if pull else ()
    batches = [validate_batch(config, extract(config, name, period_id=period_id)) for name in sources]
    aggregated = aggregate(config, report_type, period_id)
    checked = validate_report(config, report_type, period_id)
    return {"batches": batches, "aggregated": aggregated, "checked": checked}


def run_report(config: Config, report_type: ReportType | str, period_id: str, dry_run: bool = False) -> dict[str, Any]:
    """Every step in order, as the DAG runs them: extract → validate → aggregate → check → render → publish."""
    report_type = ReportType(report_type)
    period_id = period_of(config, report_type, period_id).id  # a bad period fails before anything is pulled
    result = _prepare(config, report_type, period_id)
    rendered = render(config, report_type, period_id, dry_run=dry_run)
    result["payload"] = str(rendered.path)
    if not dry_run:
        assert rendered.submission is not None
        result["receipt"] = publish(config, rendered.submission.id)
    return result


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
    settings = config.report(report_type)
    period = period_of(config, report_type, period_id)
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
        _prepare(config, report_type, period.id, pull=pull)
        candidate = _render_payload(config, report_type, period.id, str(uuid.uuid4()), version, correction)
        changes = diff.diff(base.payload, candidate, settings.format.value)
        if not changes:
            raise FatalError(
                f"{report_type.value} {period.id}: nothing changed since the accepted version v{base.version} "
                f"(receipt {base.receipt_id}): no correction sent"
            )
    rendered = _rendered(config, report_type, period, version, dry_run, correction)
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


def report_total(config: Config, report_type: ReportType | str, period_id: str) -> dict[str, Any]:
    report, found, _ = load_report(config, report_type, period_id)
    if ReportType(report_type) is ReportType.ONLINE_SERVICES:
        row = report[report["kind"] == "TOTAL"].iloc[0]
        values: dict[str, Any] = {name: int(row[name]) for name in ONLINE_COUNTS}
        values["completeness"] = {"expected": found.expected, "reported": found.reported, "missing": len(found.missing)}
        return values
    if ReportType(report_type) is ReportType.SERVICE_INDEX:
        province = report[(report["kind"] == "PROVINCE") & (report["line"] != "METRIC")]
        index: dict[str, Any] = {
            str(line["group"] or "total"): str(line["score"]) for line in province.to_dict("records")
        }
        index["agencies"] = int(((report["kind"] == "AGENCY") & (report["line"] == "TOTAL")).sum())
        index["completeness"] = {"expected": found.expected, "reported": found.reported, "missing": len(found.missing)}
        return index
    if yearly.is_yearly(report_type):
        agencies = report[0] if isinstance(report, tuple) else report
        counts: dict[str, Any] = {
            f"agencies in {block}": int(n) for block, n in agencies.groupby("block").size().items()
        }
        counts["completeness"] = {"expected": found.expected, "reported": found.reported, "missing": len(found.missing)}
        return counts
    total = report[report["kind"] == "TOTAL"].iloc[0]
    values = {name: int(total[name]) for name in COUNT_COLUMNS}
    values["on_time_rate"] = None if total["on_time_rate"] is None else str(total["on_time_rate"])
    values["completeness"] = {"expected": found.expected, "reported": found.reported, "missing": len(found.missing)}
    return values


def registry_for(config: Config) -> Registry:
    return load_registry(config.agencies_file)
