"""Kind `petition_csv`: the feedback system's petition export, for SERVICE_INDEX (department-systems.md
§4). Petitions are stored by extract itself: rows the reader or the petition checks reject are
quarantined, the rest are upserted by petition code (a re-export replaces the stored row), and a
refused file leaves every stored petition in place. The export's columns are fixed: a petition source
takes no mapping (its settings refuse one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from baocao.connectors import petition_csv
from baocao.connectors.tabular import SpreadsheetError
from baocao.core import tables
from baocao.core.bounds import Failure, Family, Window, check_date, check_text, column_limit, printable
from baocao.core.errors import RuleFailure
from baocao.core.registry import load_registry
from baocao.core.report import ReportType
from baocao.core.settings import Config
from baocao.core.sources import PetitionCsvSource
from baocao.core.states import BatchState
from baocao.run.sources.files import extract_file, files, refuse, refused_read
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.staged import quarantine_at_extract
from baocao.storage import locks, warehouse

log = logging.getLogger(__name__)

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


def _bounds_failures(row: Mapping[str, Any], window: Window) -> list[Failure]:
    """The bounds a petition's values break (`baocao.core.bounds`): its codes within their columns and
    free of control characters, its dates from 1990 to ten years after the run."""
    failures: list[Failure] = []
    for column in ("code", "agency_code"):
        if row[column] is not None:
            limit = column_limit("petitions", column)
            failures += check_text(Family.PETITION, column, str(row[column]), limit, code=True)
    for column in ("received_at", "due_at", "answered_at"):
        if row[column] is not None:
            failures += check_date(Family.PETITION, column, row[column], window)
    return failures


def _petition(
    record: Mapping[str, Any],
    where: str,
    agencies: set[str],
    source: PetitionCsvSource,
    batch_id: str,
    window: Window,
) -> dict[str, Any] | RuleFailure:
    """The stored row of a petition the reader accepted, or the first rule it breaks.

    The reader checks each value; what it leaves open is checked here: the bounds of every value
    (`baocao.core.bounds`: codes, dates, lengths), the agency must be in the
    registry (as for dossiers), and the deadline, which the index counts by, must be present and
    neither it nor the answer may come before the petition was received.
    """
    row: dict[str, Any] = {column: record.get(field) for column, field in PETITION_FIELDS.items()}
    key = f"{where} (ma_phan_anh {printable(row['code'], 60)})"
    out_of_bounds = _bounds_failures(row, window)
    if out_of_bounds:
        # The first bound broken names the rule; the detail lists them all (lengths, code points, years).
        return RuleFailure(out_of_bounds[0].rule, key, "; ".join(str(failure) for failure in out_of_bounds))
    received, due, answered = row["received_at"], row["due_at"], row["answered_at"]
    if row["agency_code"] not in agencies:
        return RuleFailure(
            "petition.agency_unknown", key, f"ma_donvi {printable(row['agency_code'], 40)} is not in the registry"
        )
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


def _store_petitions(extraction: Extraction, source: PetitionCsvSource, batch_id: str) -> None:
    """Read the export(s), quarantine the rows that break a rule, upsert the rest by petition code.

    A file that cannot be read (encoding, header) or whose rows were all rejected is refused, and with
    it the batch: nothing is written, and what was stored before stays. Files of a drop folder are read
    in name order; a petition listed in two of them is taken from the later file (exports named by date).
    """
    engine = extraction.engine
    kept = "the petitions stored before are kept"
    try:
        results = [
            petition_csv.read_petition_csv(path) for path in files(source, source.path, (".csv",), "petition export")
        ]
    except SpreadsheetError as error:
        refused_read(extraction, source, batch_id, error, "petition.refused")
        raise
    refused = [result.rejects[0] for result in results if result.refused_whole]
    rejected = [failure for result in results if not result.refused_whole for failure in result.rejects]
    if refused:
        refuse(extraction, source, batch_id, [*refused, *rejected], kept)
    agencies = set(load_registry(extraction.config.agencies_file).codes)
    window = Window.around(extraction.now)
    rows: dict[str, dict[str, Any]] = {}
    unsound: list[RuleFailure] = []
    for result in results:
        sound = 0
        for record in result.records:
            petition = _petition(record, f"petition {result.source}", agencies, source, batch_id, window)
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
        refuse(extraction, source, batch_id, [*unsound, *rejected], kept)
    stored = upsert_petitions(engine, list(rows.values()))
    quarantined = 0
    if rejected:
        quarantined = quarantine_at_extract(engine, batch_id, source.name, rejected)
    pulled = sum(len(result.records) + len(result.rejects) for result in results)
    warehouse.finish_file_batch(
        engine, batch_id, BatchState.STORED, pulled=pulled, stored=stored, quarantined=quarantined
    )
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
    """Insert or replace petitions by code in one transaction (an export has no change time: the newest read wins).

    Two stores at once take turns (petition codes are one namespace, so one lock for the table): each
    upsert alone is safe, but two transactions each holding some of the other's rows would deadlock.
    """
    table = tables.petitions
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.code],
        set_={column.name: statement.excluded[column.name] for column in table.columns if column.name != "code"},
    )
    with locks.exclusive(engine, table.name) as connection:
        for offset in range(0, len(rows), 5000):
            connection.execute(statement, [dict(row) for row in rows[offset : offset + 5000]])
    return len(rows)


def _extract(extraction: Extraction, source: PetitionCsvSource) -> str:
    return extract_file(extraction, source, lambda batch_id: _store_petitions(extraction, source, batch_id))


KIND = SourceKind(PetitionCsvSource, petition_csv, Storage.UPSERTED, _extract)


def delivered_petition_sources(config: Config, engine: Engine, report_type: ReportType) -> tuple[str, ...]:
    """The report's petition sources that have stored an export: SERVICE_INDEX's petition metrics are
    connected only with one (configured but never delivered would read as "no petitions", full points)."""
    configured = [
        name for name in config.report(report_type).sources if isinstance(config.source(name), PetitionCsvSource)
    ]
    if not configured:
        return ()
    b = tables.batches.c
    with engine.connect() as connection:
        found = set(
            connection.execute(
                sa.select(b.source).where(b.kind == KIND.name, b.state == BatchState.STORED, b.source.in_(configured))
            ).scalars()
        )
    return tuple(name for name in configured if name in found)
