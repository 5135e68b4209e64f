"""The one configuration file (TOML) read by the CLI and the DAGs, turned into frozen typed objects.

Secrets are named by environment variable in the file and read once here; their values never
appear in `repr`, logs or XCom. Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baocao.core.errors import ConfigurationError
from baocao.core.periods import PeriodType, Regime
from baocao.core.report import ReportType
from baocao.core.settings import (
    CONFIG_ENV,
    FULL_EXPORT_KINDS,
    SOURCE_KINDS,
    CentralConfig,
    CompletenessPolicy,
    Config,
    ReportConfig,
    RetryPolicy,
    Secret,
    SourceConfig,
    SubmissionFormat,
)

if TYPE_CHECKING:
    from baocao.core.keys import SigningKey


def read_secret(env_name: str, what: str) -> Secret:
    value = os.environ.get(env_name)
    if not value:
        raise ConfigurationError(f"{what}: environment variable {env_name} is not set")
    return Secret(env_name, value)


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
    from baocao.transforms import signing  # cryptography and signxml are loaded only when signing is configured

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
