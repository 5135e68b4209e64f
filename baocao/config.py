"""The one configuration file (TOML) read by the CLI and the DAGs, turned into frozen typed objects.

Secrets are named by environment variable in the file and read once here; their values never
appear in `repr`, logs or XCom. Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baocao.errors import ConfigurationError
from baocao.periods import PeriodType, Regime

if TYPE_CHECKING:
    from transforms.signing import SigningKey

CONFIG_ENV = "BAOCAO_CONFIG"


class ReportType(StrEnum):
    TTHC_RESULTS = "TTHC_RESULTS"
    SERVICE_INDEX = "SERVICE_INDEX"
    ONLINE_SERVICES = "ONLINE_SERVICES"
    ICT_RANKING = "ICT_RANKING"
    EGOV_MATURITY = "EGOV_MATURITY"


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


def read_secret(env_name: str, what: str) -> Secret:
    value = os.environ.get(env_name)
    if not value:
        raise ConfigurationError(f"{what}: environment variable {env_name} is not set")
    return Secret(env_name, value)


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


def _require(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ConfigurationError(f"{where}: missing key {key!r}")
    return table[key]


def _agency_pattern(table: Mapping[str, Any], kind: str, where: str) -> re.Pattern[str] | None:
    """`agency_in_file_name`: a regular expression with a group `agency` (commune_csv sources only)."""
    if "agency_in_file_name" not in table:
        return None
    text = table["agency_in_file_name"]
    if kind not in FULL_EXPORT_KINDS:
        raise ConfigurationError(
            f"{where}: agency_in_file_name applies to {', '.join(FULL_EXPORT_KINDS)} sources, not to kind {kind}"
        )
    if not isinstance(text, str):
        raise ConfigurationError(f"{where}: agency_in_file_name must be a regular expression (text), got {text!r}")
    try:
        pattern = re.compile(text)
    except re.error as problem:
        raise ConfigurationError(
            f"{where}: agency_in_file_name {text!r} is not a regular expression: {problem}"
        ) from None
    if "agency" not in pattern.groupindex:
        raise ConfigurationError(
            f"{where}: agency_in_file_name {text!r} has no group named agency, e.g. '^(?P<agency>[^_]+)_'"
        )
    return pattern


def _retry(table: Mapping[str, Any]) -> RetryPolicy:
    defaults = RetryPolicy()
    return RetryPolicy(
        timeout_seconds=float(table.get("timeout_seconds", defaults.timeout_seconds)),
        max_attempts=int(table.get("max_attempts", defaults.max_attempts)),
        backoff_base_seconds=float(table.get("backoff_base_seconds", defaults.backoff_base_seconds)),
        backoff_max_seconds=float(table.get("backoff_max_seconds", defaults.backoff_max_seconds)),
    )


def _resolve_url(url: str, base: Path) -> str:
    """SQLite URLs with a relative path are taken relative to the configuration file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _enum(kind: type[StrEnum], value: Any, where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ConfigurationError(f"{where}: {value!r} is not one of {allowed}") from None


SIGNING_KEYS = ("signing_key_env", "signing_cert_env", "signing_pkcs12_env", "signing_password_env")


def _signing_key(table: Mapping[str, Any], base: Path, where: str) -> SigningKey | None:
    """The signing key named in [central]: ``signing_key_env`` + ``signing_cert_env`` (PEM text or a
    path each), or ``signing_pkcs12_env`` (a path or base64); ``signing_password_env`` if encrypted."""
    if not any(name in table for name in SIGNING_KEYS):
        return None
    from transforms import signing  # cryptography and signxml are loaded only when signing is configured

    def secret(name: str, what: str) -> Secret | None:
        return read_secret(str(table[name]), f"{where} {what}") if name in table else None

    try:
        return signing.load_signing_key(
            at=datetime.now(UTC),
            base=base,
            key=secret("signing_key_env", "signing key"),
            certificate=secret("signing_cert_env", "signing certificate"),
            pkcs12_bundle=secret("signing_pkcs12_env", "signing PKCS#12 bundle"),
            password=secret("signing_password_env", "signing key password"),
        )
    except signing.SigningError as error:
        raise ConfigurationError(f"{where}: {error}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the configuration file (default: $BAOCAO_CONFIG, then ./baocao.toml)."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or "baocao.toml").resolve()
    if not chosen.is_file():
        raise ConfigurationError(f"configuration file {chosen} not found (set --config or ${CONFIG_ENV})")
    try:
        raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{chosen}: not valid TOML: {error}") from None
    base = chosen.parent
    where = str(chosen)

    province = _require(raw, "province", where)
    central_table = _require(raw, "central", where)
    central_format = _enum(SubmissionFormat, central_table.get("format", "xml"), f"{where} [central] format")
    central = CentralConfig(
        url=str(_require(central_table, "url", f"{where} [central]")).rstrip("/"),
        token=read_secret(_require(central_table, "token_env", f"{where} [central]"), "central endpoint token"),
        format=central_format,
        retry=_retry(central_table),
        signing=_signing_key(central_table, base, f"{where} [central]"),
    )

    sources: dict[str, SourceConfig] = {}
    for index, table in enumerate(raw.get("sources", [])):
        source_where = f"{where} [[sources]] #{index + 1}"
        name = str(_require(table, "name", source_where))
        kind = str(_require(table, "kind", source_where))
        if kind not in SOURCE_KINDS:
            raise ConfigurationError(f"{source_where}: kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        for key in SOURCE_KINDS[kind]:
            _require(table, key, f"{source_where} (kind {kind})")
        if kind == "catalogue_xml" and not ("base_url" in table or "path" in table):
            raise ConfigurationError(f"{source_where}: a catalogue source needs base_url or path")
        full_export = table.get("full_export", True)
        if "full_export" in table and kind not in FULL_EXPORT_KINDS:
            raise ConfigurationError(
                f"{source_where} (source {name}): full_export applies to {', '.join(FULL_EXPORT_KINDS)} sources "
                f"(whole-table exports), not to kind {kind}"
            )
        if not isinstance(full_export, bool):
            raise ConfigurationError(
                f"{source_where} (source {name}): full_export must be true or false, got {full_export!r}"
            )
        agency_in_file_name = _agency_pattern(table, kind, f"{source_where} (source {name})")
        sources[name] = SourceConfig(
            name=name,
            kind=kind,
            base_url=str(table.get("base_url", "")).rstrip("/"),
            client_id=read_secret(table["client_id_env"], f"source {name} client id")
            if "client_id_env" in table
            else None,
            client_secret=(
                read_secret(table["client_secret_env"], f"source {name} client secret")
                if "client_secret_env" in table
                else None
            ),
            database_url=read_secret(table["url_env"], f"source {name} database URL") if "url_env" in table else None,
            path=(base / str(table["path"])).resolve() if "path" in table else None,
            table=str(table.get("table", "hoso")),
            fields=dict(table.get("fields", {})),
            values={column: dict(words) for column, words in table.get("values", {}).items()},
            page_size=int(table.get("page_size", 500)),
            overlap_minutes=int(table.get("overlap_minutes", 60)),
            retry=_retry(table),
            full_export=full_export,
            agency_in_file_name=agency_in_file_name,
        )

    reports: dict[ReportType, ReportConfig] = {}
    for name, table in raw.get("reports", {}).items():
        report_where = f"{where} [reports.{name}]"
        report_type = _enum(ReportType, name, report_where)
        report_sources = tuple(table.get("sources", sources.keys()))
        for source_name in report_sources:
            if source_name not in sources:
                raise ConfigurationError(f"{report_where}: source {source_name!r} is not configured")
        reports[report_type] = ReportConfig(
            report_type=report_type,
            receiver_code=str(_require(table, "receiver_code", report_where)),
            receiver_name=str(_require(table, "receiver_name", report_where)),
            regime=_enum(Regime, table.get("regime", "D09"), report_where),
            period_type=_enum(PeriodType, table.get("period_type", "MONTH"), report_where),
            format=_enum(SubmissionFormat, table.get("format", central_format), report_where),
            sources=report_sources,
            completeness=_enum(CompletenessPolicy, table.get("completeness", "publish"), report_where),
        )

    paths = raw.get("paths", {})
    data_dir = (base / str(paths.get("data_dir", "var"))).resolve()
    warehouse = raw.get("warehouse", {})
    default_warehouse = f"sqlite:///{data_dir / 'warehouse.db'}"
    registry = _require(raw, "registry", where)
    return Config(
        path=chosen,
        province_code=str(_require(province, "code", f"{where} [province]")),
        province_name=str(_require(province, "name", f"{where} [province]")),
        data_dir=data_dir,
        warehouse_url=_resolve_url(str(warehouse.get("url", default_warehouse)), base),
        agencies_file=(base / str(_require(registry, "agencies", f"{where} [registry]"))).resolve(),
        central=central,
        reports=reports,
        sources=sources,
    )
