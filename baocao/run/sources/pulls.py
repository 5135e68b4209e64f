"""What the pulled kinds (`rest_onestop`, `sql_legacy`) share: the window of a pull, its records mapped
onto the canonical dossier and staged as a batch for validate_batch, the records without a code
quarantined, and the dossiers the source no longer has marked deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from baocao.core.bounds import Window
from baocao.core.errors import RuleFailure
from baocao.core.sources import PulledSource
from baocao.run.sources.kind import Extraction
from baocao.run.sources.staged import check_dossiers, no_code_failures, quarantine_at_extract
from baocao.storage import warehouse
from baocao.transforms.canonical import canonical_frame, deduplicate_latest

log = logging.getLogger(__name__)


class Pulled(NamedTuple):
    records: list[Any]  # raw records changed in the window (a source may send anything: they are checked)
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
    checked = check_dossiers(records, fields, values, Window.around(window_to))
    pulled = len(records)
    frame = canonical_frame(deduplicate_latest(checked.with_code()))
    staged = extraction.stage(batch_id, frame, pulled)
    failures = [*rejected, *checked.failures, *no_code_failures(len(checked.without_code()))]
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
        checked.poisoned,
        staged,
    )
    return batch_id
