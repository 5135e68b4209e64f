"""What the pulled kinds (`rest_onestop`, `sql_legacy`) share: the window of a pull, its records mapped
onto the canonical dossier and staged as a batch for validate_batch, the records without a code
quarantined, and the dossiers the source no longer has marked deleted.

Records stream: they are mapped and staged in pieces of PIECE_RECORDS as the source hands them over
(`staging.LatestByCode` keeps the latest row per code across pieces), so a pull is never held whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple

from baocao.core.bounds import Window
from baocao.core.errors import RuleFailure
from baocao.core.sources import PulledSource
from baocao.run.sources.kind import Extraction
from baocao.run.sources.staged import check_dossiers, no_code_failures, quarantine_at_extract
from baocao.storage import staging, warehouse
from baocao.transforms.canonical import canonical_frame, deduplicate_latest

log = logging.getLogger(__name__)

PIECE_RECORDS = 10_000  # records mapped and staged at a time


class Pulled(NamedTuple):
    # Raw records changed in the window, read as they are consumed (a source may send anything: they
    # are checked).
    records: Iterable[Any]
    vanished: set[str]  # for sources whose deleted rows vanish: the stored codes the source no longer has
    # What the pull itself held back (catalogue entries out of bounds), quarantined with the batch.
    rejected: list[RuleFailure] = []  # noqa: RUF012 - a NamedTuple default, never mutated


# Reads the records changed in the window (from, to); from is None on the first pull.
Pull = Callable[[datetime | None, datetime], Pulled]


def extract_pulled(
    extraction: Extraction,
    source: PulledSource,
    pull: Pull,
    fields: Mapping[str, str],
    values: Mapping[str, Mapping[str, str]],
    *,
    piece_records: int = PIECE_RECORDS,
) -> str:
    """Pull what changed since the last merged batch (minus the overlap window) into staging."""
    engine = extraction.engine
    window_to = extraction.now
    last = warehouse.watermark(engine, source.name)
    # Records committed late under an earlier updated_at would be missed by a cursor that only moves
    # forward: every pull reaches back by the overlap window, and upserts by code absorb the repeats.
    window_from = last - timedelta(minutes=source.overlap_minutes) if last else None
    batch_id = extraction.batch_id(source)
    warehouse.start_batch(engine, batch_id, source.name, source.kind, window_from, window_to)
    records, vanished, rejected = pull(window_from, window_to)
    # Poison records (out of bounds: baocao.core.bounds) are quarantined here; the rest is staged.
    window = Window.around(window_to)
    pulled = poisoned = without_code = 0
    failures: list[RuleFailure] = []
    writer = staging.LatestByCode(extraction.staging_dir, batch_id)
    try:
        for piece in _pieces(records, piece_records):
            checked = check_dossiers(piece, fields, values, window, first=pulled + 1)
            pulled += len(piece)
            poisoned += checked.poisoned
            without_code += len(checked.without_code())
            failures += checked.failures
            writer.write(staging.to_table(canonical_frame(deduplicate_latest(checked.with_code()))))
    except BaseException:
        writer.abort()
        raise
    staged = warehouse.record_staged(engine, batch_id, pulled=pulled, staged=writer.close())
    log.info("source %s: %d record(s) staged in %d piece(s)", source.name, pulled - without_code, writer.pieces)
    # `rejected` is complete once the records are consumed (a source may read more after its dossiers).
    failures = [*rejected, *failures, *no_code_failures(without_code)]
    if failures:
        quarantine_at_extract(engine, batch_id, source.name, failures)
    if vanished:
        marked = warehouse.mark_vanished(engine, source.name, vanished, batch_id)
        log.info("source %s: %d dossier(s) no longer in the source marked deleted", source.name, marked)
    log.info(
        "source %s: batch %s pulled %d record(s) in window %s → %s; %d out of bounds quarantined; "
        "%d staged after de-duplication",
        source.name,
        batch_id,
        pulled,
        window_from,
        window_to,
        poisoned,
        staged,
    )
    return batch_id


def _pieces(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(records)
    while piece := list(islice(iterator, size)):
        yield piece
