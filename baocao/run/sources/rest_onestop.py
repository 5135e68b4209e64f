"""Kind `rest_onestop`: the one-stop-shop REST API. A pull brings the dossiers changed in the window, and
the procedure catalogue the system publishes (stored under the source, unless another source
published the procedure first)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from baocao.connectors import rest_onestop
from baocao.core.errors import RuleFailure
from baocao.core.sources import RestOneStopSource
from baocao.run.sources.kind import Extraction, SourceKind, Storage
from baocao.run.sources.pulls import Pulled, extract_pulled
from baocao.storage import warehouse
from baocao.transforms.canonical import canonical_procedure, procedure_failures, procedure_key

log = logging.getLogger(__name__)


def _pull(
    extraction: Extraction, source: RestOneStopSource, window_from: datetime | None, window_to: datetime
) -> Pulled:
    client = rest_onestop.OneStopClient(source)
    rejected: list[RuleFailure] = []

    def records() -> Iterator[dict[str, Any]]:
        # Dossiers stream to staging page by page; the catalogue is read once they are all in, as before,
        # its entries out of bounds added to `rejected` (quarantined with the pull's batch).
        yield from client.dossiers(window_from, window_to)
        _store_catalogue(extraction, source, client, window_to, rejected)

    return Pulled(records(), set(), rejected)


def _store_catalogue(
    extraction: Extraction,
    source: RestOneStopSource,
    client: rest_onestop.OneStopClient,
    window_to: datetime,
    rejected: list[RuleFailure],
) -> None:
    catalogue = []
    for item in client.procedures():
        # An entry out of bounds is left out of the catalogue and quarantined with the pull's batch.
        failures = procedure_failures(item)
        key = procedure_key(item)
        rejected.extend(RuleFailure(failure.rule, key, str(failure)) for failure in failures)
        if not failures:
            catalogue.append(canonical_procedure(item))
    complete = [item for item in catalogue if item["code"] and item["agency_code"] and item["online_type"]]
    # A procedure is published by one source only: the first to store it (a catalogue export,
    # say) keeps it, and this pull's copy is left out rather than failing the whole pull.
    published_elsewhere = warehouse.procedure_publishers(extraction.engine, other_than=source.name)
    kept = [item for item in complete if (item["code"], item["agency_code"]) not in published_elsewhere]
    catalogued = warehouse.replace_procedures(extraction.engine, source.name, "catalogue", kept, as_of=window_to)
    log.info(
        "source %s: %d procedure(s) in the catalogue (%d without code/agency/type skipped, "
        "%d already published by another source left out)",
        source.name,
        catalogued,
        len(catalogue) - len(complete),
        len(complete) - len(kept),
    )


def _extract(extraction: Extraction, source: RestOneStopSource) -> str:
    def pull(window_from: datetime | None, window_to: datetime) -> Pulled:
        return _pull(extraction, source, window_from, window_to)

    return extract_pulled(extraction, source, pull, source.fields, source.values)


KIND = SourceKind(RestOneStopSource, rest_onestop, Storage.STAGED, _extract)
