"""What every kind that stages dossiers shares (`rest_onestop`, `sql_legacy`, `commune_csv`): each record
read is mapped and checked against the bounds (`transforms.canonical.checked_record`); a poison record
(a date in year 9999, a 10 MiB field name, a NUL or a right-to-left override in its code, a list where a
word belongs) is quarantined at extract with the rule it breaks, and the rest is staged. The same on
SQLite and PostgreSQL: nothing out of bounds reaches either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from baocao.core.bounds import Window, printable
from baocao.core.canonical import Col
from baocao.core.errors import RuleFailure
from baocao.storage import warehouse
from baocao.transforms.canonical import checked_record

log = logging.getLogger(__name__)

# How many quarantined records a batch names in the log (all are in the quarantine).
LOGGED_FAILURES = 20


@dataclass
class CheckedDossiers:
    """The records of a read: the canonical rows that keep every bound, and a failure per broken bound
    of the others (`RuleFailure.key`: the record's dossier code when it is sound, for reconciliations)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    # Per record held back: its dossier code when sound, else None (what a reconciliation may rely on).
    held_codes: list[str | None] = field(default_factory=list)

    @property
    def poisoned(self) -> int:
        """How many records were held back."""
        return len(self.held_codes)

    def without_code(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row[Col.CODE.value] is None]

    def with_code(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row[Col.CODE.value] is not None]


def check_dossiers(
    records: Iterable[object],
    fields: Mapping[str, str],
    values: Mapping[str, Mapping[str, str]],
    window: Window,
    where: str = "record",
    first: int = 1,
) -> CheckedDossiers:
    """Map and check each record; `where` prefixes the name of a record without a usable code
    (`record #3`, `commune x.csv record #3`), numbered from `first` (a read checked in pieces)."""
    checked = CheckedDossiers()
    for number, record in enumerate(records, start=first):
        result = checked_record(record, fields, values, window)
        if result.row is not None:
            checked.rows.append(result.row)
            continue
        sound = result.key is not None and not any(failure.field == Col.CODE.value for failure in result.failures)
        checked.held_codes.append(result.key if sound else None)
        # Named as validation names a record, by its code (escaped and cut when the code is the poison).
        name = result.key if result.key is not None else f"{where} #{number}"
        checked.failures += [
            RuleFailure(failure.rule, name, str(failure), key=result.key if sound else None)
            for failure in result.failures
        ]
    return checked


def no_code_failures(count: int) -> list[RuleFailure]:
    """The records without a dossier code, quarantined by position (validation cannot name them)."""
    return [
        RuleFailure("Every dossier has a code", f"record without code #{n + 1}", "code missing") for n in range(count)
    ]


def quarantine_at_extract(engine: Engine, batch_id: str, source: str, failures: Sequence[RuleFailure]) -> int:
    """Quarantine a batch's extract-stage failures in one call (a call replaces the stage's entries of
    the batch, so every failure of the batch goes in together); returns the records quarantined. The
    log names the source, the record (its key escaped and cut) and the rule, never a value."""
    quarantined = warehouse.record_quarantine(
        engine, batch_id, source, [(failure.record, failure.rule, failure.detail) for failure in failures], "extract"
    )
    for failure in failures[:LOGGED_FAILURES]:
        log.warning(
            "source %s: %s quarantined: %s (%s)",
            source,
            printable(failure.record, 120),
            failure.rule,
            printable(failure.detail, 200),
        )
    if len(failures) > LOGGED_FAILURES:
        log.warning("source %s: %d more quarantined in batch %s", source, len(failures) - LOGGED_FAILURES, batch_id)
    return quarantined
