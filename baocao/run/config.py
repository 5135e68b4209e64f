"""The one configuration file (TOML) read by the CLI and the DAGs, turned into frozen typed objects.

The file is parsed by the pydantic models below and, for each `[[sources]]` table, by its kind's
settings (`baocao.core.sources`); every table refuses the keys it does not know. Secrets are named
by environment variable in the file and read once here; their values never appear in `repr`, logs or
XCom. Relative paths are resolved against the file's folder. A problem is one `ConfigurationError`
line naming the file, the table (a source by its name, or as `[[sources]] #n`) and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from baocao.core.errors import ConfigurationError
from baocao.core.periods import PeriodType, Regime
from baocao.core.report import ReportType
from baocao.core.settings import (
    CONFIG_ENV,
    CentralConfig,
    CompletenessPolicy,
    Config,
    ReportConfig,
    RetryPolicy,
    Secret,
    SubmissionFormat,
)
from baocao.core.sources import (
    SOURCE_KINDS,
    AnySource,
    Attempts,
    Backoff,
    FileContext,
    PathInFolder,
    SecretFromEnvironment,
    SourceSettings,
    Timeout,
    Url,
)

if TYPE_CHECKING:
    from baocao.core.keys import SigningKey


def read_secret(env_name: str, what: str) -> Secret:
    value = os.environ.get(env_name)
    if not value:
        raise ConfigurationError(f"{what}: environment variable {env_name} is not set")
    return Secret(env_name, value)


# ---------------------------------------------------------------- the file's tables


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_alias=True, validate_by_name=False)


class _Province(_Table):
    code: str  # the sender agency code
    name: str


class _Paths(_Table):
    data_dir: str = "var"  # Data Docs, staging, rendered payloads; the SQLite warehouse by default


class _Warehouse(_Table):
    url: str | None = None
    # The URL from an environment variable: a PostgreSQL URL carries a password, which the file must not.
    url_from_environment: SecretFromEnvironment | None = Field(None, alias="url_env")

    @model_validator(mode="after")
    def _one_url(self) -> _Warehouse:
        if self.url is not None and self.url_from_environment is not None:
            raise ValueError("give url or url_env, not both")
        return self


class _Registry(_Table):
    agencies: PathInFolder  # code,name,level[,valid_from,valid_to]


class _Central(_Table):
    url: Url
    token: SecretFromEnvironment = Field(alias="token_env")
    format: SubmissionFormat = SubmissionFormat.XML
    timeout_seconds: Timeout = RetryPolicy.timeout_seconds
    deadline_seconds: Timeout | None = None  # one try, whole; default: 4 x timeout_seconds
    max_attempts: Attempts = RetryPolicy.max_attempts
    backoff_base_seconds: Backoff = RetryPolicy.backoff_base_seconds
    backoff_max_seconds: Backoff = RetryPolicy.backoff_max_seconds
    max_wait_seconds: Backoff = RetryPolicy.max_wait_seconds
    # The signing key, by environment variable: read by `_signing_key` once the tables are sound.
    signing_key_env: str | None = None
    signing_cert_env: str | None = None
    signing_pkcs12_env: str | None = None
    signing_password_env: str | None = None


class _Report(_Table):
    receiver_code: str
    receiver_name: str
    regime: Regime = Regime.D09
    period_type: PeriodType = PeriodType.MONTH
    format: SubmissionFormat | None = None  # default: the central's
    sources: tuple[str, ...] | None = None  # default: every configured source
    completeness: CompletenessPolicy = CompletenessPolicy.PUBLISH


class _ConfigFile(_Table):
    province: _Province
    paths: _Paths = _Paths()
    warehouse: _Warehouse = _Warehouse.model_validate({})
    registry: _Registry
    central: _Central
    reports: dict[ReportType, _Report] = Field(default_factory=dict)
    sources: list[AnySource] = Field(default_factory=list)


# ---------------------------------------------------------------- pydantic's errors as one line


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _place(raw: Mapping[str, Any], loc: Sequence[str | int]) -> tuple[str, str, str | None]:
    """Where an error is (the table as the file writes it), the key within it, and a source's kind."""
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        tables = raw.get("sources")
        table = tables[loc[1]] if isinstance(tables, list) and loc[1] < len(tables) else None
        name = table.get("name") if isinstance(table, dict) else None
        rest = list(loc[2:])
        kind = str(rest.pop(0)) if rest and rest[0] in SOURCE_KINDS else None
        label = f"[[sources]] #{loc[1] + 1}" + (f" (source {name})" if isinstance(name, str) else "")
        return label, ".".join(str(part) for part in rest), kind
    if len(loc) >= 2 and loc[0] == "reports":
        rest = [part for part in loc[2:] if part != "[key]"]
        return f"[reports.{loc[1]}]", ".".join(str(part) for part in rest), None
    if len(loc) >= 2 and isinstance(raw.get(str(loc[0])), dict):
        return f"[{loc[0]}]", ".".join(str(part) for part in loc[1:]), None
    return "", ".".join(str(part) for part in loc), None


def _unknown_key(key: str, kind: str | None) -> str:
    """A key the table does not take; for a source, the kinds that take it, or the keys its kind takes."""
    if kind is None:
        return f"unknown key {key!r}"
    others = [name for name, settings in SOURCE_KINDS.items() if key in settings.file_keys()]
    if others:
        return f"{key} applies to {', '.join(others)} sources, not to kind {kind}"
    return f"unknown key {key!r} (kind {kind} takes {', '.join(SOURCE_KINDS[kind].file_keys())})"


def _problem(error: ErrorDetails, key: str, kind: str | None) -> str:
    """What is wrong, as a phrase that begins with the key (the value is shown, never a secret's: secrets
    are not in the file)."""
    kind_of_error, context, given = error["type"], error.get("ctx", {}), _shown(error.get("input"))
    subject = f"{key} " if key else ""
    if kind_of_error == "missing":
        return f"missing key {key!r}"
    if kind_of_error == "union_tag_not_found":
        return "missing key 'kind'"
    if kind_of_error == "union_tag_invalid":
        return f"kind {context.get('tag')!r} is not one of {', '.join(SOURCE_KINDS)}"
    if kind_of_error == "extra_forbidden":
        return _unknown_key(key, kind)
    if kind_of_error in ("bool_type", "bool_parsing"):
        return f"{subject}must be true or false, got {given}"
    if kind_of_error in ("int_type", "int_parsing", "int_from_float"):
        return f"{subject}must be a whole number, got {given}"
    if kind_of_error in ("float_type", "float_parsing"):
        return f"{subject}must be a number, got {given}"
    if kind_of_error == "string_type":
        return f"{subject}must be text, got {given}"
    if kind_of_error in ("model_type", "model_attributes_type", "dict_type"):
        return f"{subject}must be a table, got {given}"
    if kind_of_error in ("list_type", "tuple_type"):
        return f"{subject}must be a list, got {given}"
    if kind_of_error == "enum":
        allowed = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{subject}{given} is not one of {allowed}"
    if kind_of_error in ("greater_than_equal", "greater_than"):
        bound = f"at least {context['ge']}" if "ge" in context else f"more than {context.get('gt')}"
        return f"{subject}must be {bound}, got {given}"
    if kind_of_error in ("less_than_equal", "less_than"):
        bound = f"at most {context['le']}" if "le" in context else f"less than {context.get('lt')}"
        return f"{subject}must be {bound}, got {given}"
    if kind_of_error == "finite_number":
        return f"{subject}must be a finite number, got {given}"
    if kind_of_error == "value_error":
        return f"{subject}{context.get('error')}"
    return f"{key}: {error['msg']}" if key else error["msg"]


def _problems(where: str, raw: Mapping[str, Any], error: ValidationError) -> str:
    """Every problem on one line: the file, then each problem's table and key."""
    lines = []
    for details in error.errors(include_url=False):
        label, key, kind = _place(raw, details["loc"])
        if details["type"] == "missing" and kind is not None:
            # What a source must have depends on its kind.
            label = label[:-1] + f", kind {kind})" if label.endswith(")") else f"{label} (kind {kind})"
        problem = _problem(details, key, kind)
        lines.append(f"{label}: {problem}" if label else problem)
    shown = "; ".join(lines[:10]) + (f" (and {len(lines) - 10} more)" if len(lines) > 10 else "")
    # The file, then the first problem's table: "…/baocao.toml [central]: format 'pdf' is not one of xml, json".
    return f"{where} {shown}" if shown.startswith("[") else f"{where}: {shown}"


# ---------------------------------------------------------------- what the tables do not say alone


def _resolve_url(url: str, base: Path) -> str:
    """SQLite URLs with a relative path are taken relative to the configuration file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


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


def _sources_by_name(where: str, sources: Sequence[SourceSettings]) -> dict[str, SourceSettings]:
    by_name: dict[str, SourceSettings] = {}
    first: dict[str, int] = {}
    for number, source in enumerate(sources, 1):
        if source.name in by_name:
            raise ConfigurationError(
                f"{where} [[sources]] #{number} (source {source.name}): name {source.name!r} is already used by "
                f"[[sources]] #{first[source.name]}"
            )
        by_name[source.name], first[source.name] = source, number
    return by_name


def _report(
    where: str, report_type: ReportType, table: _Report, central: _Central, sources: Sequence[str]
) -> ReportConfig:
    report_sources = table.sources if table.sources is not None else tuple(sources)
    for source_name in report_sources:
        if source_name not in sources:
            raise ConfigurationError(f"{where} [reports.{report_type}]: source {source_name!r} is not configured")
    return ReportConfig(
        report_type=report_type,
        receiver_code=table.receiver_code,
        receiver_name=table.receiver_name,
        regime=table.regime,
        period_type=table.period_type,
        format=table.format or central.format,
        sources=report_sources,
        completeness=table.completeness,
    )


SUPPORTED_WAREHOUSES = ("sqlite", "postgresql")


def _warehouse_url(where: str, table: _Warehouse, data_dir: Path, base: Path) -> str:
    """The warehouse URL (from the file, from `url_env`, or SQLite in data_dir), checked for a dialect
    the warehouse supports and a driver that is installed; messages show it with its password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    given = table.url_from_environment.value if table.url_from_environment else table.url
    key = f"url_env (${table.url_from_environment.env_name})" if table.url_from_environment else "url"
    url = _resolve_url(given or f"sqlite:///{data_dir / 'warehouse.db'}", base)
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The text is not repeated: it may be a password pasted in the wrong place.
        raise ConfigurationError(f"{where} [warehouse]: {key} is not a database URL (dialect://...)") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in SUPPORTED_WAREHOUSES:
        raise ConfigurationError(
            f"{where} [warehouse]: {key} {shown}: dialect {parsed.get_backend_name()!r} is not supported "
            f"(one of {', '.join(SUPPORTED_WAREHOUSES)})"
        )
    try:
        parsed.get_dialect()
    except (NoSuchModuleError, ImportError) as error:
        raise ConfigurationError(f"{where} [warehouse]: {key} {shown}: no such driver ({error})") from None
    return url


def _data_dir(where: str, folder: Path) -> Path:
    """data_dir must be a folder, or not exist yet under a folder (whether it is writable is checked at start,
    by `check_config`, by writing to it)."""
    for step in (folder, *folder.parents):
        if step.exists():
            if not step.is_dir():
                raise ConfigurationError(f"{where} [paths]: data_dir {folder}: {step} is a file, not a folder")
            break
    return folder


def _read_file(chosen: Path) -> dict[str, Any]:
    """The file's tables; a file that is missing, a folder, unreadable, not UTF-8 or not TOML is one line."""
    if chosen.is_dir():
        raise ConfigurationError(f"configuration file {chosen} is a folder, not a file (set --config or ${CONFIG_ENV})")
    if not chosen.is_file():
        raise ConfigurationError(f"configuration file {chosen} not found (set --config or ${CONFIG_ENV})")
    try:
        data = chosen.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"configuration file {chosen} cannot be read ({error.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigurationError(
            f"{chosen}: not UTF-8 text (line {line}, byte {error.start + 1}: {data[error.start : error.end]!r}); "
            "save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigurationError(f"{chosen}: not valid TOML: {' '.join(str(error).split())}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the configuration file (default: $BAOCAO_CONFIG, then ./baocao.toml)."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or "baocao.toml").resolve()
    raw = _read_file(chosen)
    base = chosen.parent
    where = str(chosen)
    try:
        parsed = _ConfigFile.model_validate(raw, context=FileContext(base, os.environ))
    except ValidationError as error:
        raise ConfigurationError(_problems(where, raw, error)) from None

    central = parsed.central
    sources = _sources_by_name(where, parsed.sources)
    data_dir = _data_dir(where, (base / parsed.paths.data_dir).resolve())
    return Config(
        path=chosen,
        province_code=parsed.province.code,
        province_name=parsed.province.name,
        data_dir=data_dir,
        warehouse_url=_warehouse_url(where, parsed.warehouse, data_dir, base),
        agencies_file=parsed.registry.agencies,
        central=CentralConfig(
            url=central.url,
            token=central.token,
            format=central.format,
            retry=RetryPolicy(
                central.timeout_seconds,
                central.max_attempts,
                central.backoff_base_seconds,
                central.backoff_max_seconds,
                central.deadline_seconds,
                central.max_wait_seconds,
            ),
            signing=_signing_key(raw["central"], base, f"{where} [central]"),
        ),
        reports={
            report_type: _report(where, report_type, table, central, list(sources))
            for report_type, table in parsed.reports.items()
        },
        sources=sources,
    )


# ---------------------------------------------------------------- what only trying can tell


def check_config(config: Config) -> None:
    """What reading the file cannot tell, tried before anything is pulled or frozen: data_dir can be
    written and the warehouse answers (`RetriableError` when it does not,
    `FatalError` when it refuses). `baocao config check`, every run and the DAG's first task call it."""
    import tempfile

    from baocao.storage import warehouse

    where = f"{config.path} [paths]: data_dir {config.data_dir}"
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=config.data_dir, prefix=".baocao-check-"):
            pass
    except OSError as error:
        raise ConfigurationError(f"{where}: cannot be written ({error.strerror})") from None
    engine = warehouse.open_engine(config.warehouse_url)
    try:
        warehouse.reachable(engine)
    finally:
        engine.dispose()
