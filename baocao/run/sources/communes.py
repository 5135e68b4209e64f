"""Kind `commune_csv`: the communes' dossier exports (department-systems.md §2, §4). Commune dossiers are
records like any source's: mapped to the canonical dossier by the source's mapping (the `hoso` mapping
by default), staged, then validated and merged by validate_batch. A row the reader rejects is
quarantined and the rest go on; a file that cannot be read at all (encoding, header) stops the batch,
since none of its rows can be trusted. An export being its commune's whole table, stored dossiers of
the batch's communes that no file lists any more are marked deleted (`full_export = false` turns that
off for communes that send changed rows only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from baocao.connectors import commune_csv
from baocao.connectors.catalogue_xml import ReadResult
from baocao.connectors.tabular import SpreadsheetError
from baocao.core.bounds import Window, printable
from baocao.core.canonical import Col, nfc
from baocao.core.errors import RuleFailure
from baocao.core.sources import CommuneCsvSource
from baocao.run.sources.files import extract_file, files, refuse, refused_read
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.sql_legacy import hoso_mapping
from baocao.run.sources.staged import check_dossiers, quarantine_at_extract
from baocao.storage import warehouse
from baocao.transforms.canonical import canonical_frame, canonical_record, deduplicate_latest

log = logging.getLogger(__name__)


def _stage_commune_dossiers(extraction: Extraction, source: CommuneCsvSource, batch_id: str) -> None:
    """Stage the rows of the export files as one batch, then reconcile the stored dossiers with them.

    An export is its commune's whole `hoso` table, where deleted rows disappear (department-systems.md
    §2, §4): a stored dossier of a commune in this batch that no file lists any more was deleted there,
    and is marked so (`_mark_deleted_commune_dossiers`). A refused file stops the batch before anything
    is staged or marked.
    """
    try:
        results = [
            commune_csv.read_commune_csv(path) for path in files(source, source.path, (".csv",), "dossier export")
        ]
    except SpreadsheetError as error:
        refused_read(extraction, source, batch_id, error, "commune.refused")
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
        refuse(extraction, source, batch_id, [*refused, *rejected], "no dossier of this batch is staged")
    fields, values = hoso_mapping(source)
    window = Window.around(extraction.now)
    # Rows the reader accepted may still be out of bounds (a year 9999, a 600-character field name, an
    # escape in a code): quarantined with the reader's rejects, the rest staged.
    checked = [
        check_dossiers(result.records, fields, values, window, f"commune {printable(result.source)} record")
        for result in results
    ]
    per_file = [file_checked.rows for file_checked in checked]
    poisoned = [failure for file_checked in checked for failure in file_checked.failures]
    rows = [row for file_rows in per_file for row in file_rows]
    pulled = sum(len(result.records) for result in results) + len(rejected)
    # Several exports of the same commune may hold the same dossier: the latest change wins, as for pulls.
    staged = extraction.stage(batch_id, canonical_frame(deduplicate_latest(rows)), pulled)
    if rejected or poisoned:
        quarantine_at_extract(extraction.engine, batch_id, source.name, [*rejected, *poisoned])
    log.info(
        "source %s: batch %s read %d file(s) (%s): %d row(s) staged, %d quarantined",
        source.name,
        batch_id,
        len(results),
        ", ".join(f"{printable(result.source)} {result.encoding}" for result in results),
        staged,
        len(rejected) + sum(file_checked.poisoned for file_checked in checked),
    )
    # A row held back for its bounds is still in its commune's table: its code (when readable) counts
    # as present, as a rejected row's does.
    held_back = [file_checked.held_codes for file_checked in checked]
    _mark_deleted_commune_dossiers(extraction.engine, source, batch_id, results, per_file, named, held_back)


def _named_agencies(source: CommuneCsvSource, results: Sequence[ReadResult]) -> list[str | None]:
    """Per file, the agency its name gives (`agency_in_file_name`), or None (no pattern, or no match)."""
    pattern = source.agency_in_file_name
    if pattern is None:
        return [None] * len(results)
    found = [pattern.search(result.source) for result in results]
    return [nfc(match.group("agency")) if match else None for match in found]


def _rejected_code(source: CommuneCsvSource, failure: RuleFailure) -> str | None:
    """The canonical dossier code of a row the reader rejected, or None when it has no readable one.

    Only the reader's `ma_hoso` is known of a rejected row (`RuleFailure.key`): when the source's
    mapping takes the code from another column, the row's code is unknown too.
    """
    fields, values = hoso_mapping(source)
    if failure.key is None or fields.get(Col.CODE.value, Col.CODE.value) != "ma_hoso":
        return None
    # Through the same mapping as the accepted rows, so that both name the dossier alike.
    code = canonical_record({"ma_hoso": failure.key}, fields, values)[Col.CODE.value]
    return str(code) if code else None


def _mark_deleted_commune_dossiers(
    engine: Engine,
    source: CommuneCsvSource,
    batch_id: str,
    results: Sequence[ReadResult],
    per_file: Sequence[Sequence[Mapping[str, Any]]],
    named: Sequence[str | None],
    held_back: Sequence[Sequence[str | None]],
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
    for result, rows, name_agency, held in zip(results, per_file, named, held_back, strict=True):
        file_agencies = {str(row[Col.AGENCY_CODE.value]) for row in rows if row[Col.AGENCY_CODE.value]}
        file_agencies |= {name_agency} if name_agency else set()
        agencies |= file_agencies
        codes = [row[Col.CODE.value] for row in rows]
        codes += [_rejected_code(source, failure) for failure in result.rejects]
        codes += list(held)
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


def _extract(extraction: Extraction, source: CommuneCsvSource) -> str:
    return extract_file(extraction, source, lambda batch_id: _stage_commune_dossiers(extraction, source, batch_id))


KIND = SourceKind(CommuneCsvSource, commune_csv, Storage.STAGED, _extract)
