"""The configuration as typed, frozen objects: the province, the warehouse, the central endpoint, each
report and each source. Read once at the edge (`baocao.run.config`) and passed down; secrets show
only the name of the variable they came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from baocao.core.errors import ConfigurationError
from baocao.core.keys import SigningKey
from baocao.core.periods import PeriodType, Regime
from baocao.core.report import ReportType

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


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 60.0


@dataclass(frozen=True)
class SourceConfig:
    """One department system. Which keys it needs depends on its kind (see SOURCE_KINDS)."""

    name: str
    kind: str
    fields: Mapping[str, str]
    values: Mapping[str, Mapping[str, str]]
    base_url: str = ""
    client_id: Secret | None = None
    client_secret: Secret | None = None
    database_url: Secret | None = None  # a secret: database URLs carry passwords
    path: Path | None = None  # a file or a drop folder
    table: str = "hoso"
    page_size: int = 500
    overlap_minutes: int = 60
    retry: RetryPolicy = RetryPolicy()
    # commune_csv only: each file is its commune's whole `hoso` table (department-systems.md §4), so a
    # stored dossier of an agency in this batch's files that no file lists any more was deleted there.
    # False for communes that send only the rows that changed: then nothing is ever marked deleted.
    full_export: bool = True
    # commune_csv only: where a file's name says whose table it is (a regular expression with a group
    # named `agency`, searched in the name). Then a file with a header only still names its commune,
    # whose stored dossiers have all been deleted there; a file whose name does not match is refused.
    agency_in_file_name: re.Pattern[str] | None = None

    def credentials(self) -> tuple[Secret, Secret]:
        if self.client_id is None or self.client_secret is None:
            raise ConfigurationError(f"source {self.name}: client_id_env and client_secret_env are required")
        return self.client_id, self.client_secret


# What each kind of source needs in its [[sources]] table, besides name and kind.
SOURCE_KINDS: Mapping[str, tuple[str, ...]] = {
    "rest_onestop": ("base_url", "client_id_env", "client_secret_env"),
    "sql_legacy": ("url_env",),
    "catalogue_xml": (),  # base_url (over HTTP) or path (a drop folder)
    "commune_csv": ("path",),
    "petition_csv": ("path",),
    "ict_workbook": ("path",),
    "egov_workbook": ("path",),
}


# Kinds whose files are whole-table dumps that `full_export` can declare (deleted rows vanish from them).
FULL_EXPORT_KINDS = ("commune_csv",)


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
    warehouse_url: str
    agencies_file: Path
    central: CentralConfig
    reports: Mapping[ReportType, ReportConfig]
    sources: Mapping[str, SourceConfig]

    def report(self, report_type: ReportType | str) -> ReportConfig:
        try:
            return self.reports[ReportType(report_type)]
        except (KeyError, ValueError):
            known = ", ".join(self.reports) or "none"
            raise ConfigurationError(
                f"{self.path}: report {report_type!r} is not configured (configured: {known})"
            ) from None

    def source(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            raise ConfigurationError(f"{self.path}: source {name!r} is not configured") from None
