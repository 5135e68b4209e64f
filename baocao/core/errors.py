"""Errors grouped by what happens next: retry later, stop and fix, or quarantine and report.

Only the DAG layer turns these into Airflow exceptions (retriable → task retry, the rest → fail now).
Messages name the source, the record key and the rule; they never carry personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


class BaocaoError(Exception):
    """Base of every error this project raises on purpose."""


class RetriableError(BaocaoError):
    """A passing fault (timeout, 429, 5xx, request in progress): the same call may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(BaocaoError):
    """Retrying cannot help (authentication, contract violation, rejected submission): a person must act."""


class ConfigurationError(FatalError):
    """The configuration file, a period id or a command-line value is wrong."""


class ContractError(FatalError):
    """A contract inside the pipeline is broken: what one step hands the next (a column missing, an agency
    listed twice, a report line out of place) or a rule that cannot be run as written. The step before
    let it through, so the same input fails the same way on every retry: that step must be fixed."""


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """One failed data-quality rule: which rule, on which record or row, and the values compared."""

    rule: str
    record: str
    detail: str
    # The record's own key (a dossier or petition code) when the row gave one: what a reconciliation
    # needs to know that the record exists, though it was rejected.
    key: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"rule {self.rule!r} failed on {self.record}: {self.detail}"


class DataQualityError(BaocaoError):
    """A blocking data-quality rule failed: nothing is published until the data is fixed."""

    def __init__(self, source: str, failures: Sequence[RuleFailure], failed_rows: int | None = None) -> None:
        self.source = source
        self.failures = list(failures)
        shown = "; ".join(str(f) for f in self.failures[:10])
        more = f" (and {len(self.failures) - 10} more)" if len(self.failures) > 10 else ""
        count = failed_rows if failed_rows is not None else len(self.failures)
        super().__init__(f"{source}: {count} failed check(s): {shown}{more}")
