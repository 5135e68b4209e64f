"""Kind `catalogue_xml`: the provincial procedure catalogue export, over HTTP or from a file or drop
folder (department-systems.md §3). It comes whole and replaces whole what the source stored before, so
it is checked whole first: a catalogue with any rejected record is refused (record, rule and reason go
to `quarantine` and into the error), and the stored catalogue stays as it was.

An entry out of bounds (a poison value: a 2,000-character name, a right-to-left override in a code;
`catalogue.*` rules of `baocao.core.bounds`) does not refuse the catalogue: it is quarantined with its
rule, the entry stored before for that procedure and agency (when its code and agency are sound and
the source had published it) stays in its place, and the rest of the catalogue is stored. Leaving the
entry out instead would remove the procedure from every report.
"""

from __future__ import annotations

import logging
from typing import Any

from baocao.connectors import catalogue_xml
from baocao.connectors.catalogue_xml import ReadResult
from baocao.core.bounds import printable
from baocao.core.errors import ConfigurationError, RuleFailure
from baocao.core.sources import CatalogueXmlSource
from baocao.core.states import BatchState
from baocao.run.sources.files import extract_file, files, refuse, refused_read
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.staged import quarantine_at_extract
from baocao.storage import warehouse
from baocao.transforms.canonical import procedure_failures, procedure_key

log = logging.getLogger(__name__)


def _read_catalogue(source: CatalogueXmlSource) -> list[ReadResult]:
    if source.base_url:
        return [
            catalogue_xml.read_catalogue_url(
                source.base_url, timeout=source.timeout_seconds, deadline_seconds=source.deadline_seconds
            )
        ]
    if source.path is None:  # the settings refuse a catalogue source without either
        raise ConfigurationError(f"source {source.name}: a catalogue source needs base_url or path")
    return [
        catalogue_xml.read_catalogue_file(path) for path in files(source, source.path, (".xml",), "catalogue export")
    ]


def _store_catalogue(extraction: Extraction, source: CatalogueXmlSource, batch_id: str) -> None:
    """The catalogue replaces the source's stored one only when every record of every file is sound."""
    kept = "the catalogue stored before is kept"
    try:
        results = _read_catalogue(source)
    except catalogue_xml.CatalogueError as error:
        refused_read(extraction, source, batch_id, error, "catalogue.refused")
        raise
    failures = [failure for result in results for failure in result.rejects]
    # A drop folder may split the catalogue into files; one procedure of one agency is listed once.
    seen: dict[tuple[str, str], str] = {}
    records: list[dict[str, Any]] = []
    poisoned: list[RuleFailure] = []
    held: set[tuple[str, str]] = set()  # the procedures of poison entries whose code and agency are sound
    for result in results:
        for record in result.records:
            out_of_bounds = procedure_failures(record)
            if out_of_bounds:
                # A poison entry is quarantined; the entry stored before for its procedure keeps its place.
                poisoned += [
                    RuleFailure(failure.rule, f"{printable(result.source)} ({procedure_key(record)})", str(failure))
                    for failure in out_of_bounds
                ]
                sound = {"code", "agency_code"}.isdisjoint(failure.field for failure in out_of_bounds)
                if sound and isinstance(record, dict) and record.get("code") and record.get("agency_code"):
                    held.add((str(record["code"]), str(record["agency_code"])))
                continue
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
    listed = ", ".join(result.source for result in results)
    held -= set(seen)  # listed soundly elsewhere in the folder: that entry is the catalogue's
    kept_before = warehouse.stored_procedures(extraction.engine, source.name, held)
    if not records and not kept_before and not failures:
        failures.append(
            RuleFailure("catalogue.empty", listed, "no ThuTuc: an empty file would remove every stored procedure")
        )
    # The warehouse holds one catalogue entry per procedure and agency, whichever source published it.
    publishers = warehouse.procedure_publishers(extraction.engine, other_than=source.name)
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
        refuse(extraction, source, batch_id, [*poisoned, *failures], kept)
    entries = [*records, *kept_before]
    stored = warehouse.replace_procedures(extraction.engine, source.name, batch_id, entries, as_of=extraction.now)
    quarantined = 0
    if poisoned:
        quarantined = quarantine_at_extract(extraction.engine, batch_id, source.name, poisoned)
    skipped = sum(len(result.skipped) for result in results)
    warehouse.finish_file_batch(
        extraction.engine, batch_id, BatchState.STORED, pulled=len(records), stored=stored, quarantined=quarantined
    )
    log.info(
        "source %s: catalogue of %d procedure(s) stored from %s (%d non-procedure element(s) ignored; "
        "%d entr(ies) out of bounds quarantined, %d of them kept as stored before)",
        source.name,
        stored,
        listed,
        skipped,
        len({failure.record for failure in poisoned}),
        len(kept_before),
    )


def _extract(extraction: Extraction, source: CatalogueXmlSource) -> str:
    return extract_file(extraction, source, lambda batch_id: _store_catalogue(extraction, source, batch_id))


KIND = SourceKind(CatalogueXmlSource, catalogue_xml, Storage.STORED_WHOLE, _extract)
