"""The configuration as typed, frozen objects: the province, the warehouse, the central endpoint, each
report and each source (one settings model per source kind, `baocao.core.sources`). Read once at the
edge (`baocao.run.config`) and passed down; secrets show only the name of the variable they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from baocao.core.errors import ConfigurationError
from baocao.core.keys import SigningKey
from baocao.core.periods import PeriodType, Regime
from baocao.core.report import ReportType

if TYPE_CHECKING:
    from baocao.core.sources import SourceSettings

CONFIG_ENV = "BAOCAO_CONFIG"


class CompletenessPolicy(StrEnum):
    """What a run does when some expected agencies reported nothing for the period."""

    PUBLISH = "publish"  # send, with the missing agencies listed in the header
    WAIT = "wait"  # retriable: try again later (Airflow's retries), up to the submission deadline
    FAIL = "fail"  # stop: a person decides


class SubmissionFormat(StrEnum):
    XML = "xml"
    JSON = "json"


@dataclass(frozen=True)
class Secret:
    """A secret value read from the environment; shows only the variable's name."""

    env_name: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"<secret from ${self.env_name}>"


# A try's whole deadline, by default, in timeouts: room for a slow answer, none for a trickling one.
DEADLINE_TIMEOUTS = 4


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    # The whole of one try (connect, answer, body), whatever the server trickles; None: DEADLINE_TIMEOUTS
    # times the timeout. The timeout alone bounds each wait for a byte, not the sum of the waits.
    deadline_seconds: float | None = None
    # The longest pause between tries (backoff or Retry-After) this run takes; a server asking for a
    # longer one ends the call with a RetriableError saying when to come back, instead of sleeping.
    max_wait_seconds: float = 60.0

    @property
    def deadline(self) -> float:
        return self.deadline_seconds if self.deadline_seconds is not None else DEADLINE_TIMEOUTS * self.timeout_seconds


@dataclass(frozen=True)
class ReportConfig:
    report_type: ReportType
    receiver_code: str
    receiver_name: str
    regime: Regime
    period_type: PeriodType
    format: SubmissionFormat
    sources: tuple[str, ...]
    completeness: CompletenessPolicy = CompletenessPolicy.PUBLISH


@dataclass(frozen=True)
class CentralConfig:
    url: str
    token: Secret
    format: SubmissionFormat
    retry: RetryPolicy
    # The province's signing key and certificate when the central wants signed submissions; its repr
    # shows the certificate's subject and thumbprint only.
    signing: SigningKey | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    province_code: str
    province_name: str
    data_dir: Path
    warehouse_url: str = field(repr=False)  # may carry a password
    agencies_file: Path
    central: CentralConfig
    reports: Mapping[ReportType, ReportConfig]
    sources: Mapping[str, SourceSettings]

    def report(self, report_type: ReportType | str) -> ReportConfig:
        try:
            return self.reports[ReportType(report_type)]
        except (KeyError, ValueError):
            known = ", ".join(self.reports) or "none"
            raise ConfigurationError(
                f"{self.path}: report {report_type!r} is not configured (configured: {known})"
            ) from None

    def source(self, name: str) -> SourceSettings:
        try:
            return self.sources[name]
        except KeyError:
            raise ConfigurationError(f"{self.path}: source {name!r} is not configured") from None
