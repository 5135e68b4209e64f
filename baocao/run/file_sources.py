"""Extract for the file sources: the procedure catalogue export, the yearly score workbooks and the
communes' dossier CSVs (department-systems.md §3 and §4). `pipeline.extract` hands them here.

A catalogue and a score workbook come whole and replace whole what their source stored before, so
they are checked whole first: a file with any rejected record is refused (record, rule and reason
go to `quarantine` and into the error), and the stored catalogue or scores stay as they were.
Commune dossiers are records like any source's: mapped to the canonical dossier by the source's
mapping (the `hoso` mapping by default), staged, then validated and merged by the common path. A
row the reader rejects is quarantined and the rest go on; a file that cannot be read at all
(encoding, header) stops the batch, since none of its rows can be trusted. An export being its
commune's whole table, stored dossiers of the batch's communes that no file lists any more are marked
deleted (`full_export = false` turns that off for communes that send changed rows only).
Petitions (the feedback system's export, for SERVICE_INDEX) are stored by extract itself: rows the
reader or the petition checks reject are quarantined, the rest are upserted by petition code (a
re-export replaces the stored row), and a refused file leaves every stored petition in place.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from baocao.connectors.catalogue_xml import CatalogueError, ReadResult, read_catalogue_file, read_catalogue_url
from baocao.connectors.commune_csv import read_commune_csv
from baocao.connectors.petition_csv import read_petition_csv
from baocao.connectors.sql_legacy import HOSO_FIELD_MAP, HOSO_VALUE_MAPS
from baocao.connectors.tabular import SpreadsheetError
from baocao.connectors.workbooks import read_egov_workbook, read_ict_workbook
from baocao.core import tables
from baocao.core.canonical import PERSONAL_FIELDS, Col, nfc
from baocao.core.errors import BaocaoError, ConfigurationError, DataQualityError, RetriableError, RuleFailure
from baocao.core.periods import Period, PeriodType, Regime, parse_period
from baocao.core.registry import load_registry
from baocao.core.report import ReportType
from baocao.core.settings import Config
from baocao.run import yearly
from baocao.storage import warehouse
from baocao.transforms.canonical import canonical_frame, canonical_record, deduplicate_latest

log = logging.getLogger(__name__)

CATALOGUE_XML = "catalogue_xml"
ICT_WORKBOOK = "ict_workbook"
EGOV_WORKBOOK = "egov_workbook"
COMMUNE_CSV = "commune_csv"
PETITION_CSV = "petition_csv"
# Stored whole when read (no dossiers: nothing for the dossier suite to validate or merge).
WHOLE_FILE_KINDS = (CATALOGUE_XML, ICT_WORKBOOK, EGOV_WORKBOOK)
# Stored by extract itself, no dossiers either: the whole files, and petitions (upserted by code).
STORED_FILE_KINDS = (*WHOLE_FILE_KINDS, PETITION_CSV)
# Dossier exports: staged like any pull, then validated and merged.
DOSSIER_FILE_KINDS = (COMMUNE_CSV,)

WORKBOOK_REPORTS = {ICT_WORKBOOK: ReportType.ICT_RANKING, EGOV_WORKBOOK: ReportType.EGOV_MATURITY}
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")

# Writes a batch's canonical frame to staging: (batch id, frame, records pulled) → rows staged.
StageDossiers = Callable[[str, pd.DataFrame, int], int]


def extract_file(
    config: Config, source: Any, period_id: str | None, now: datetime, engine: Engine, stage: StageDossiers
) -> str:
    """Read one file source into the warehouse; returns the batch id (validate takes it from there)."""
    batch_id = f"{source.name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    warehouse.start_batch(engine, batch_id, source.name, source.kind, None, now)
    try:
        if source.kind == CATALOGUE_XML:
            _store_catalogue(engine, source, batch_id, now)
        elif source.kind in WORKBOOK_REPORTS:
            _store_scores(config, engine, source, batch_id, period_id)
        elif source.kind == COMMUNE_CSV:
            _stage_commune_dossiers(engine, source, batch_id, stage)
        elif source.kind == PETITION_CSV:
            _store_petitions(config, engine, source, batch_id)
        else:
            raise ConfigurationError(f"source {source.name}: kind {source.kind!r} is not a file source extract reads")
    except BaocaoError as error:
        # REJECTED: the file was refused (reasons in quarantine); FAILED: it could not be fetched (try later).
        state = "FAILED" if isinstance(error, RetriableError) else "REJECTED"
        quarantined = len({row["record_key"] for row in warehouse.quarantined_records(engine, batch_id)})
        warehouse.finish_file_batch(engine, batch_id, state, pulled=0, stored=0, quarantined=quarantined)
        raise
    return batch_id


def _refuse(engine: Engine, source: Any, batch_id: str, failures: Sequence[RuleFailure], kept: str) -> NoReturn:
    """Quarantine the reasons and stop: `kept` says what stays stored in the file's place."""
    warehouse.record_quarantine(
        engine, batch_id, source.name, [(f.record, f.rule, f.detail) for f in failures], stage="extract"
    )
    raise DataQualityError(f"source {source.name}: file refused, {kept}", failures)


def _refused_read(engine: Engine, source: Any, batch_id: str, error: BaocaoError, rule: str) -> None:
    """A file the reader refused whole (hostile, too big, no header): its reason is quarantined too."""
    warehouse.record_quarantine(engine, batch_id, source.name, [(source.name, rule, str(error))], stage="extract")


def _files(source: Any, suffixes: Sequence[str], what: str) -> list[Path]:
    """The source's file, or the matching files of its drop folder by name."""
    if source.path is None:
        raise ConfigurationError(f"source {source.name}: no path configured for the {what}")
    if source.path.is_dir():
        # Hidden files (uploads in progress) and Excel's lock files (`~$name.xlsx`) are not exports.
        found = sorted(
            path
            for path in source.path.iterdir()
            if path.suffix.lower() in suffixes and not path.name.startswith((".", "~$"))
        )
        if not found:
            raise ConfigurationError(
                f"source {source.name}: no {what} ({', '.join(suffixes)}) in the folder {source.path}"
            )
        return found
    if not source.path.is_file():
        raise ConfigurationError(f"source {source.name}: {source.path} is neither a file nor a folder")
    return [source.path]


# ---------------------------------------------------------------- procedure catalogue


def _read_catalogue(source: Any) -> list[ReadResult]:
    if source.base_url:
        return [read_catalogue_url(source.base_url, timeout=source.timeout_seconds)]
    return [read_catalogue_file(path) for path in _files(source, (".xml",), "catalogue export")]


def _store_catalogue(engine: Engine, source: Any, batch_id: str, now: datetime) -> None:
    """The catalogue replaces the source's stored one only when every record of every file is sound."""
    kept = "the catalogue stored before is kept"
    try:
        results = _read_catalogue(source)
    except CatalogueError as error:
        _refused_read(engine, source, batch_id, error, "catalogue.refused")
        raise
    failures = [failure for result in results for failure in result.rejects]
    # A drop folder may split the catalogue into files; one procedure of one agency is listed once.
    seen: dict[tuple[str, str], str] = {}
    records: list[dict[str, Any]] = []
    for result in results:
        for record in result.records:
            key = (record["code"], record["agency_code"])
            if key in seen:
                failures.append(
                    RuleFailure(
                        "catalogue.duplicate",
                        f"{result.source} (MaTTHC {key[0]}, MaDonVi {key[1]})",
                        f"also listed in {seen[key]}",
                    )
                )
                continue
            seen[key] = result.source
            records.append(record)
    files = ", ".join(result.source for result in results)
    if not records and not failures:
        failures.append(
            RuleFailure("catalogue.empty", files, "no ThuTuc: an empty file would remove every stored procedure")
        )
    # The warehouse holds one catalogue entry per procedure and agency, whichever source published it.
    publishers = warehouse.procedure_publishers(engine, other_than=source.name)
    for record in records:
        other = publishers.get((record["code"], record["agency_code"]))
        if other is not None:
            failures.append(
                RuleFailure(
                    "catalogue.other_source",
                    f"MaTTHC {record['code']}, MaDonVi {record['agency_code']}",
                    f"already published by source {other}: configure one catalogue source per agency",
                )
            )
    if failures:
        _refuse(engine, source, batch_id, failures, kept)
    stored = warehouse.replace_procedures(engine, source.name, batch_id, records, as_of=now)
    skipped = sum(len(result.skipped) for result in results)
    warehouse.finish_file_batch(engine, batch_id, "STORED", pulled=len(records), stored=stored, quarantined=0)
    log.info(
        "source %s: catalogue of %d procedure(s) stored from %s (%d non-procedure element(s) ignored)",
        source.name,
        stored,
        files,
        skipped,
    )


# ---------------------------------------------------------------- yearly score workbooks


def _workbook_for(source: Any, period_id: str | None, report: ReportType, regime: Regime) -> tuple[Path, Period]:
    """The workbook of the period, and the period. A workbook says its year in its file name
    (`ict-2019.xlsx`); with no period given, a single file's name gives it."""
    paths = _files(source, WORKBOOK_SUFFIXES, "workbook")
    years = {path: set(_YEAR_IN_NAME.findall(path.stem)) for path in paths}
    if period_id is None:
        if len(paths) == 1 and len(years[paths[0]]) == 1:
            period_id = next(iter(years[paths[0]]))
        else:
            raise ConfigurationError(
                f"source {source.name}: no period given, and the year cannot be told from the file name(s) "
                f"{', '.join(path.name for path in paths)}: give the period"
            )
    period = parse_period(period_id, regime)
    if period.type is not PeriodType.YEAR:
        raise ConfigurationError(f"source {source.name}: {report} workbooks hold a year; {period_id} is not one")
    year = period.id
    if len(paths) == 1:
        path = paths[0]
        if years[path] and year not in years[path]:
            raise ConfigurationError(
                f"source {source.name}: the workbook {path.name} is for {', '.join(sorted(years[path]))}, not {year}"
            )
        return path, period
    chosen = [path for path in paths if year in years[path]]
    if len(chosen) != 1:
        found = ", ".join(path.name for path in chosen) if chosen else "none"
        raise ConfigurationError(
            f"source {source.name}: one workbook for {year} expected in {source.path} (file name with the year), "
            f"found {found}"
        )
    return chosen[0], period


def _score_rows(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        row = {"code": record["agency_code"], "block": record["block"], "name": record["agency_name"]}
        row.update({column: record.get(column) for column in columns if column not in ("code", "block", "name")})
        rows.append(row)
    return rows


def _store_scores(config: Config, engine: Engine, source: Any, batch_id: str, period_id: str | None) -> None:
    """The year's scores replace the stored ones only when every row of the workbook is sound and the
    report can be assembled from them."""
    report = WORKBOOK_REPORTS[source.kind]
    settings = config.report(report)
    rivals = [name for name in settings.sources if name != source.name and config.source(name).kind == source.kind]
    if rivals:
        # Scores are stored whole per report and period: a second workbook source would replace the first's.
        raise ConfigurationError(
            f"report {report}: sources {source.name} and {', '.join(rivals)} are both {source.kind}; "
            "a report's scores come from one workbook"
        )
    path, period = _workbook_for(source, period_id, report, settings.regime)
    kept = f"the {report} {period.id} scores stored before are kept"
    read = read_ict_workbook if report is ReportType.ICT_RANKING else read_egov_workbook
    try:
        result = read(path)
    except SpreadsheetError as error:
        _refused_read(engine, source, batch_id, error, "workbook.refused")
        raise
    if result.rejects:
        _refuse(engine, source, batch_id, result.rejects, kept)
    definition = yearly.YEARLY_REPORTS[report]
    scores = _score_rows(result.records, definition.input_columns)
    if not scores:
        _refuse(engine, source, batch_id, [RuleFailure(f"{source.kind}.empty", path.name, "no unit rows")], kept)
    try:
        # What the report step will do with the stored scores (blocks of the period, 3 decimals): done
        # now, so that scores it would refuse never replace good ones.
        definition.assemble(pd.DataFrame(scores, columns=list(definition.input_columns)), period)
    except (BaocaoError, ValueError) as error:
        _refuse(engine, source, batch_id, [RuleFailure(f"{report.value.lower()}.input", path.name, str(error))], kept)
    stored = yearly.store_scores(engine, report, period, source.name, batch_id, scores)
    warehouse.finish_file_batch(engine, batch_id, "STORED", pulled=len(scores), stored=stored, quarantined=0)
    log.info(
        "source %s: %s %s: %d unit(s) stored from %s (%d row(s) that are not data skipped)",
        source.name,
        report,
        period.id,
        stored,
        path.name,
        len(result.skipped),
    )


# ---------------------------------------------------------------- commune dossier exports


def _stage_commune_dossiers(engine: Engine, source: Any, batch_id: str, stage: StageDossiers) -> None:
    """Stage the rows of the export files as one batch, then reconcile the stored dossiers with them.

    An export is its commune's whole `hoso` table, where deleted rows disappear (department-systems.md
    §2, §4): a stored dossier of a commune in this batch that no file lists any more was deleted there,
    and is marked so (`_mark_deleted_commune_dossiers`). A refused file stops the batch before anything
    is staged or marked.
    """
    try:
        results = [read_commune_csv(path) for path in _files(source, (".csv",), "dossier export")]
    except SpreadsheetError as error:
        _refused_read(engine, source, batch_id, error, "commune.refused")
        raise
    refused = [result.rejects[0] for result in results if result.refused_whole]
    named = _named_agencies(source, results)
    if source.agency_in_file_name is not None:
        pattern = source.agency_in_file_name.pattern
        refused += [
            RuleFailure(
                "commune.file_name",
                f"commune {result.source}",
                f"the file name does not match agency_in_file_name {pattern!r}: whose table it is is unknown",
            )
            for result, agency in zip(results, named, strict=True)
            if agency is None and not result.refused_whole
        ]
    rejected = [failure for result in results if not result.refused_whole for failure in result.rejects]
    if refused:
        _refuse(engine, source, batch_id, [*refused, *rejected], "no dossier of this batch is staged")
    fields = source.fields or HOSO_FIELD_MAP
    values = source.values or HOSO_VALUE_MAPS
    per_file = [[canonical_record(record, fields, values) for record in result.records] for result in results]
    rows = [row for file_rows in per_file for row in file_rows]
    # Several exports of the same commune may hold the same dossier: the latest change wins, as for pulls.
    staged = stage(batch_id, canonical_frame(deduplicate_latest(rows)), len(rows) + len(rejected))
    if rejected:
        warehouse.record_quarantine(
            engine, batch_id, source.name, [(f.record, f.rule, f.detail) for f in rejected], stage="extract"
        )
        for failure in rejected[:20]:
            log.warning("source %s: %s quarantined: %s (%s)", source.name, failure.record, failure.rule, failure.detail)
    log.info(
        "source %s: batch %s read %d file(s) (%s): %d row(s) staged, %d quarantined",
        source.name,
        batch_id,
        len(results),
        ", ".join(f"{result.source} {result.encoding}" for result in results),
        staged,
        len(rejected),
    )
    _mark_deleted_commune_dossiers(engine, source, batch_id, results, per_file, named)


def _named_agencies(source: Any, results: Sequence[ReadResult]) -> list[str | None]:
    """Per file, the agency its name gives (`agency_in_file_name`), or None (no pattern, or no match)."""
    pattern = source.agency_in_file_name
    if pattern is None:
        return [None] * len(results)
    found = [pattern.search(result.source) for result in results]
    return [nfc(match.group("agency")) if match else None for match in found]


def _rejected_code(source: Any, failure: RuleFailure) -> str | None:
    """The canonical dossier code of a row the reader rejected, or None when it has no readable one.

    Only the reader's `ma_hoso` is known of a rejected row (`RuleFailure.key`): when the source's
    mapping takes the code from another column, the row's code is unknown too.
    """
    fields = source.fields or HOSO_FIELD_MAP
    if failure.key is None or fields.get(Col.CODE.value, Col.CODE.value) != "ma_hoso":
        return None
    # Through the same mapping as the accepted rows, so that both name the dossier alike.
    code = canonical_record({"ma_hoso": failure.key}, fields, source.values or HOSO_VALUE_MAPS)[Col.CODE.value]
    return str(code) if code else None


def _mark_deleted_commune_dossiers(
    engine: Engine,
    source: Any,
    batch_id: str,
    results: Sequence[ReadResult],
    per_file: Sequence[Sequence[Mapping[str, Any]]],
    named: Sequence[str | None],
) -> int:
    """Mark deleted the stored live dossiers that vanished from their commune's export; returns how many.

    Without this a dossier deleted in a commune's table would keep counting in every report. Only the
    agencies with rows in this batch's files are compared, each with every file of the batch: a
    commune whose file did not come this time loses nothing, and a dossier that moved to another
    file stays. A code counts as present whether the reader accepted its row or rejected it (a bad
    date does not delete a dossier). A file with a row whose code cannot be read may hold any dossier
    of its agencies: those agencies are not compared in this batch. With `agency_in_file_name`, a file's
    name adds its commune to the agencies compared, so a file with a header only (a commune whose
    every dossier was deleted) marks that commune's dossiers deleted. With `full_export = false` (exports
    of changed rows only) absence means nothing and nothing is marked. The log gets counts only, never
    a dossier of the marked ones.
    """
    if not source.full_export:
        log.info(
            "source %s: batch %s: full_export = false (exports hold changed rows only): no dossier marked deleted",
            source.name,
            batch_id,
        )
        return 0
    present: set[str] = set()
    agencies: set[str] = set()
    withheld: set[str] = set()
    for result, rows, name_agency in zip(results, per_file, named, strict=True):
        file_agencies = {str(row[Col.AGENCY_CODE.value]) for row in rows if row[Col.AGENCY_CODE.value]}
        file_agencies |= {name_agency} if name_agency else set()
        agencies |= file_agencies
        codes = [row[Col.CODE.value] for row in rows]
        codes += [_rejected_code(source, failure) for failure in result.rejects]
        present.update(str(code) for code in codes if code)
        unreadable = sum(1 for code in codes if not code)
        if unreadable:
            withheld |= file_agencies
            log.warning(
                "source %s: batch %s: %s has %d row(s) without a readable dossier code; deleted dossiers of "
                "its %d agency(ies) are not looked for in this batch (a deleted dossier cannot be told from "
                "an unreadable row)",
                source.name,
                batch_id,
                result.source,
                unreadable,
                len(file_agencies),
            )
    compared = agencies - withheld
    vanished = warehouse.live_codes(engine, source.name, compared) - present if compared else set()
    marked = warehouse.mark_vanished(engine, source.name, vanished, batch_id) if vanished else 0
    log.info(
        "source %s: batch %s: %d dossier(s) no longer in the exports of %d agency(ies) marked deleted "
        "(%d agency(ies) not compared: rows without a readable code)",
        source.name,
        batch_id,
        marked,
        len(compared),
        len(withheld),
    )
    return marked


# ---------------------------------------------------------------- petition exports (SERVICE_INDEX)

# Stored column ← the export's column (department-systems.md §4). The export's columns are fixed, and
# only these six are read: names or phone numbers a system might add never reach the warehouse.
PETITION_FIELDS: Mapping[str, str] = {
    "code": "ma_phan_anh",
    "agency_code": "ma_donvi",
    "received_at": "ngay_nhan",
    "due_at": "han_tra_loi",
    "answered_at": "ngay_tra_loi",
    "satisfied": "hai_long",
}


def _check_petition_mapping(source: Any) -> None:
    """A petition source takes no field mapping; one naming a personal field is refused by name, as for dossiers."""
    personal = sorted(field for field in source.fields.values() if field.split(".")[0] in PERSONAL_FIELDS)
    if personal:
        raise ConfigurationError(
            f"source {source.name}: the mapping sends personal field(s) {', '.join(personal)} into the warehouse"
        )
    if source.fields or source.values:
        raise ConfigurationError(
            f"source {source.name}: a petition export has fixed columns ({', '.join(PETITION_FIELDS.values())}); "
            "remove [sources.fields] and [sources.values]"
        )


def _as_moment(value: date, end_of_day: bool = False) -> datetime:
    """A reader value as a naive local time: a bare date is its day's first instant, or its last (deadlines)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.max if end_of_day else time.min)


def _before(later: date, earlier: date) -> bool:
    """Whether `later` is before `earlier`; by day when either side gives only a date."""
    if isinstance(later, datetime) and isinstance(earlier, datetime):
        return later < earlier
    return _day(later) < _day(earlier)


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _petition(
    record: Mapping[str, Any], where: str, agencies: set[str], source: Any, batch_id: str
) -> dict[str, Any] | RuleFailure:
    """The stored row of a petition the reader accepted, or the first rule it breaks.

    The reader checks each value; what it leaves open is checked here: the agency must be in the
    registry (as for dossiers), and the deadline, which the index counts by, must be present and
    neither it nor the answer may come before the petition was received.
    """
    row: dict[str, Any] = {column: record.get(field) for column, field in PETITION_FIELDS.items()}
    key = f"{where} (ma_phan_anh {row['code']})"
    received, due, answered = row["received_at"], row["due_at"], row["answered_at"]
    if row["agency_code"] not in agencies:
        return RuleFailure("petition.agency_unknown", key, f"ma_donvi {row['agency_code']} is not in the registry")
    if due is None:
        return RuleFailure("petition.deadline_missing", key, "no han_tra_loi: the petition cannot be placed")
    if _before(due, received):
        return RuleFailure("petition.due_before_received", key, f"han_tra_loi {due} is before ngay_nhan {received}")
    if answered is not None and _before(answered, received):
        return RuleFailure(
            "petition.answered_before_received", key, f"ngay_tra_loi {answered} is before ngay_nhan {received}"
        )
    return {
        **row,
        "received_at": _as_moment(received),
        # "Answer by 11/03" means until 24:00 of that day; a time given is the deadline itself.
        "due_at": _as_moment(due, end_of_day=True),
        # An answer dated without an hour counts from the start of its day (on time on the deadline's day).
        "answered_at": None if answered is None else _as_moment(answered),
        "source": source.name,
        "batch_id": batch_id,
    }


def _store_petitions(config: Config, engine: Engine, source: Any, batch_id: str) -> None:
    """Read the export(s), quarantine the rows that break a rule, upsert the rest by petition code.

    A file that cannot be read (encoding, header) or whose rows were all rejected is refused, and with
    it the batch: nothing is written, and what was stored before stays. Files of a drop folder are read
    in name order; a petition listed in two of them is taken from the later file (exports named by date).
    """
    _check_petition_mapping(source)
    kept = "the petitions stored before are kept"
    try:
        results = [read_petition_csv(path) for path in _files(source, (".csv",), "petition export")]
    except SpreadsheetError as error:
        _refused_read(engine, source, batch_id, error, "petition.refused")
        raise
    refused = [result.rejects[0] for result in results if result.refused_whole]
    rejected = [failure for result in results if not result.refused_whole for failure in result.rejects]
    if refused:
        _refuse(engine, source, batch_id, [*refused, *rejected], kept)
    agencies = set(load_registry(config.agencies_file).codes)
    rows: dict[str, dict[str, Any]] = {}
    unsound: list[RuleFailure] = []
    for result in results:
        sound = 0
        for record in result.records:
            petition = _petition(record, f"petition {result.source}", agencies, source, batch_id)
            if isinstance(petition, RuleFailure):
                rejected.append(petition)
                continue
            sound += 1
            rows[petition["code"]] = petition
        if (result.records or result.rejects) and not sound:
            unsound.append(
                RuleFailure("petition.no_sound_rows", f"petition {result.source} (whole file)", "no row kept")
            )
    if unsound:
        # Storing nothing would make the file look like a period without petitions (full points).
        _refuse(engine, source, batch_id, [*unsound, *rejected], kept)
    stored = upsert_petitions(engine, list(rows.values()))
    quarantined = 0
    if rejected:
        quarantined = warehouse.record_quarantine(
            engine, batch_id, source.name, [(f.record, f.rule, f.detail) for f in rejected], stage="extract"
        )
        for failure in rejected[:20]:
            log.warning("source %s: %s quarantined: %s (%s)", source.name, failure.record, failure.rule, failure.detail)
    pulled = sum(len(result.records) + len(result.rejects) for result in results)
    warehouse.finish_file_batch(engine, batch_id, "STORED", pulled=pulled, stored=stored, quarantined=quarantined)
    log.info(
        "source %s: batch %s read %d file(s) (%s): %d petition(s) stored, %d quarantined",
        source.name,
        batch_id,
        len(results),
        ", ".join(f"{result.source} {result.encoding}" for result in results),
        stored,
        quarantined,
    )


def upsert_petitions(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert or replace petitions by code in one transaction (an export has no change time: the newest read wins)."""
    table = tables.petitions
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.code],
        set_={column.name: statement.excluded[column.name] for column in table.columns if column.name != "code"},
    )
    with engine.begin() as connection:
        for offset in range(0, len(rows), 5000):
            connection.execute(statement, [dict(row) for row in rows[offset : offset + 5000]])
    return len(rows)


def delivered_petition_sources(config: Config, engine: Engine, report_type: ReportType) -> tuple[str, ...]:
    """The report's petition sources that have stored an export: SERVICE_INDEX's petition metrics are
    connected only with one (configured but never delivered would read as "no petitions", full points)."""
    configured = [name for name in config.report(report_type).sources if config.source(name).kind == PETITION_CSV]
    if not configured:
        return ()
    b = tables.batches.c
    with engine.connect() as connection:
        found = set(
            connection.execute(
                sa.select(b.source).where(b.kind == PETITION_CSV, b.state == "STORED", b.source.in_(configured))
            ).scalars()
        )
    return tuple(name for name in configured if name in found)
