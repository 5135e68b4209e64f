"""The source kinds' settings: one frozen model per kind, its `[[sources]]` table of the configuration
file as a type. A table is told apart by its `kind` (a discriminated union, `AnySource`); each kind
takes its own keys and no other, so a key of another kind, or a misspelt one, is an error.

The models' aliases are the file's keys (`url_env`), their attributes the domain's words
(`database_url`). Reading a file goes through a `FileContext`: a secret is named in the file by its
environment variable and read from the context's environment, a relative path is taken against the
file's folder. The run layer (`baocao.run.sources`) knows what each kind reads and how it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from baocao.core.canonical import CANONICAL_COLUMNS, personal_part
from baocao.core.settings import RetryPolicy, Secret

# An environment variable's name as shells and secret stores write it: a value pasted in its place
# (a password, a database URL) is refused without being repeated.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FileContext:
    """What reading a configuration file needs besides its text: its folder and the environment."""

    folder: Path
    environ: Mapping[str, str] = dataclass_field(repr=False)


def _file_context(info: ValidationInfo) -> FileContext | None:
    return info.context if isinstance(info.context, FileContext) else None


def _secret_from_environment(value: Any, info: ValidationInfo) -> Secret:
    """A `Secret` as given, or read from the environment variable the file names."""
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError("must be the name of an environment variable (letters, digits and _), not a value")
    context = _file_context(info)
    found = context.environ.get(value) if context else None
    if not found:
        raise ValueError(f"names the environment variable {value}, which is not set")
    return Secret(value, found)


def _path_in_folder(value: Any, info: ValidationInfo) -> Path:
    """A path; a relative one is taken against the configuration file's folder."""
    if not isinstance(value, str | Path):
        raise ValueError(f"must be a path (text), got {value!r}")
    context = _file_context(info)
    return (context.folder / value).resolve() if context else Path(value)


def _agency_pattern(value: Any) -> re.Pattern[str]:
    """A regular expression with a group named `agency`."""
    if isinstance(value, re.Pattern):
        pattern: re.Pattern[str] = value
    elif isinstance(value, str):
        try:
            pattern = re.compile(value)
        except re.error as problem:
            raise ValueError(f"{value!r} is not a regular expression: {problem}") from None
    else:
        raise ValueError(f"must be a regular expression (text), got {value!r}")
    if "agency" not in pattern.groupindex:
        raise ValueError(f"{pattern.pattern!r} has no group named agency, e.g. '^(?P<agency>[^_]+)_'")
    return pattern


def _url(value: Any) -> str:
    """An http(s) URL with a host: a garbage URL is refused when the file is read, not when a request is
    first sent (for the central, after the payload is frozen)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a URL (text), got {value!r}")
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value.rstrip("/")


def url_problem(value: str) -> str | None:
    """Why `value` is not a usable http(s) URL, or None. The URL is not repeated (it may carry a password)."""
    if not value or value != value.strip() or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "must be an http(s) URL without spaces or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port  # a port that is not a number, or out of range, raises here
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if parts.scheme not in ("http", "https"):
        given = f"not scheme {parts.scheme!r}" if parts.scheme else "no scheme given"
        return f"must be an http:// or https:// URL ({given})"
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        return "must name a host (http(s)://host[:port]/path)"
    if port == 0:
        return "must not use port 0"
    return None


# A host as URLs write it: a DNS name, an IPv4 address, or an IPv6 address (its brackets removed).
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")


# Every number the file may give has a range, and a number must be written as one (strict: "30" and true
# are refused, not read as 30 and 1); infinity and NaN (which TOML allows) are refused too.
Timeout = Annotated[float, Field(strict=True, gt=0, le=3600, allow_inf_nan=False)]
StatementTimeout = Annotated[float, Field(strict=True, gt=0, le=86400, allow_inf_nan=False)]
Backoff = Annotated[float, Field(strict=True, ge=0, le=3600, allow_inf_nan=False)]
Attempts = Annotated[int, Field(strict=True, ge=1, le=100)]
PageSize = Annotated[int, Field(strict=True, ge=1, le=1000)]  # the one-stop API's `limit` is 1–1000
MaxPages = Annotated[int, Field(strict=True, ge=1, le=100_000_000)]
ChunkSize = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
OverlapMinutes = Annotated[int, Field(strict=True, ge=0, le=44640)]  # at most 31 days

PERSONAL_RULE = "mapping.personal_field: personal data never enters the canonical record"


def _not_canonical(columns: list[str]) -> str:
    return f"{', '.join(repr(c) for c in columns)}: not canonical column(s) (one of {', '.join(CANONICAL_COLUMNS)})"


def mapping_problems(fields: Mapping[str, str]) -> list[str]:
    """What is wrong with a field mapping (canonical column → source field's dotted path): a column that is
    not canonical, a path with an empty part, or a path any part of which names personal data."""
    problems = []
    unknown = [column for column in fields if column not in CANONICAL_COLUMNS]
    if unknown:
        problems.append(_not_canonical(unknown))
    for column, path in fields.items():
        if not isinstance(path, str) or not path or any(not part.strip() for part in path.split(".")):
            problems.append(f"{column} = {path!r}: a source field is a dotted path of non-empty names")
            continue
        part = personal_part(path)
        if part is not None:
            problems.append(f"{column} = {path!r} reads personal field {part!r} (rule {PERSONAL_RULE})")
    return problems


SecretFromEnvironment = Annotated[Secret, PlainValidator(_secret_from_environment)]
PathInFolder = Annotated[Path, PlainValidator(_path_in_folder)]
AgencyPattern = Annotated[re.Pattern[str], PlainValidator(_agency_pattern)]
Url = Annotated[str, PlainValidator(_url)]


class SourceSettings(BaseModel):
    """What every source has: its name (how reports list it) and its kind."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_alias=True, validate_by_name=False)

    name: str
    kind: str

    @classmethod
    def kind_name(cls) -> str:
        """The `kind` its table names."""
        return str(cls.model_fields["kind"].default)

    @classmethod
    def file_keys(cls) -> tuple[str, ...]:
        """The keys its table may have, as the file spells them."""
        return tuple(field.alias or name for name, field in cls.model_fields.items())


class MappedSource(SourceSettings):
    """A source of dossiers whose records are mapped onto the canonical dossier by configuration."""

    # canonical column → the source's field (a dotted path into a JSON record).
    fields: Mapping[str, str] = Field(default_factory=dict)
    # canonical column → the source's word → the canonical value.
    values: Mapping[str, Mapping[str, str]] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _fields_are_canonical_and_impersonal(cls, fields: Mapping[str, str]) -> Mapping[str, str]:
        problems = mapping_problems(fields)
        if problems:
            raise ValueError("; ".join(problems))
        return fields

    @field_validator("values")
    @classmethod
    def _values_are_canonical(cls, values: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
        unknown = [column for column in values if column not in CANONICAL_COLUMNS]
        if unknown:
            raise ValueError(_not_canonical(unknown))
        return values


class PulledSource(MappedSource):
    """A system asked for what changed since the last merged batch."""

    # Records committed late under an earlier change time would be missed by a cursor that only moves
    # forward: every pull reaches back this far, and upserts by code absorb the repeats.
    overlap_minutes: OverlapMinutes = 60


class FileSource(SourceSettings):
    """A source delivered as files: one file, or a drop folder of them."""

    path: PathInFolder


class RestOneStopSource(PulledSource):
    """The one-stop-shop REST API (department-systems.md §1): OAuth client credentials, cursor paging."""

    kind: Literal["rest_onestop"] = "rest_onestop"
    base_url: Url
    client_id: SecretFromEnvironment = Field(alias="client_id_env")
    client_secret: SecretFromEnvironment = Field(alias="client_secret_env")
    page_size: PageSize = 500
    # More pages than this in one pull means a server that pages forever: the pull stops, fatal.
    max_pages: MaxPages = 100_000
    timeout_seconds: Timeout = RetryPolicy.timeout_seconds
    deadline_seconds: Timeout | None = None  # default: 4 x timeout_seconds
    max_attempts: Attempts = RetryPolicy.max_attempts
    backoff_base_seconds: Backoff = RetryPolicy.backoff_base_seconds
    backoff_max_seconds: Backoff = RetryPolicy.backoff_max_seconds
    max_wait_seconds: Backoff = RetryPolicy.max_wait_seconds

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            self.timeout_seconds,
            self.max_attempts,
            self.backoff_base_seconds,
            self.backoff_max_seconds,
            self.deadline_seconds,
            self.max_wait_seconds,
        )

    def credentials(self) -> tuple[Secret, Secret]:
        return self.client_id, self.client_secret


class SqlLegacySource(PulledSource):
    """A department's old one-stop database, read-only (department-systems.md §2). Without [sources.fields]
    and [sources.values] the `hoso` table's published mapping applies; an option left out takes the
    connector's default."""

    kind: Literal["sql_legacy"] = "sql_legacy"
    database_url: SecretFromEnvironment = Field(alias="url_env")  # a secret: database URLs carry passwords
    table: str = "hoso"
    change_column: str | None = None
    chunk_size: ChunkSize | None = None
    connect_timeout_seconds: Timeout | None = None
    statement_timeout_seconds: StatementTimeout | None = None

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, url: Secret) -> Secret:
        """The variable holds a database URL (dialect://...); its value is never repeated."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url.value)
        except ArgumentError:
            raise ValueError(f"${url.env_name} does not hold a database URL (dialect://user@host/db)") from None
        return url


class CatalogueXmlSource(SourceSettings):
    """The provincial procedure catalogue export (department-systems.md §3), over HTTP or as files."""

    kind: Literal["catalogue_xml"] = "catalogue_xml"
    base_url: Url | None = None
    path: PathInFolder | None = None  # a file or a drop folder, when there is no base_url
    timeout_seconds: Timeout = RetryPolicy.timeout_seconds
    deadline_seconds: Timeout | None = None  # the whole download; default: 4 x timeout_seconds

    @model_validator(mode="after")
    def _somewhere(self) -> CatalogueXmlSource:
        if not self.base_url and self.path is None:
            raise ValueError("a catalogue source needs base_url or path")
        return self


class CommuneCsvSource(MappedSource, FileSource):
    """Communes' dossier exports (department-systems.md §4), mapped like the `hoso` table by default."""

    kind: Literal["commune_csv"] = "commune_csv"
    # Each file is its commune's whole `hoso` table, so a stored dossier of an agency in this batch's
    # files that no file lists any more was deleted there. False for communes that send only the rows
    # that changed: then nothing is ever marked deleted.
    full_export: StrictBool = True
    # Where a file's name says whose table it is (a regular expression with a group named `agency`,
    # searched in the name). Then a file with a header only still names its commune, whose stored
    # dossiers have all been deleted there; a file whose name does not match is refused.
    agency_in_file_name: AgencyPattern | None = None


class PetitionCsvSource(FileSource):
    """The feedback system's petition export, for SERVICE_INDEX (department-systems.md §4)."""

    kind: Literal["petition_csv"] = "petition_csv"

    @model_validator(mode="before")
    @classmethod
    def _no_mapping(cls, data: Any) -> Any:
        """The export's columns are fixed; a mapping naming a personal field is refused by name, as for dossiers."""
        if not isinstance(data, Mapping) or not ({"fields", "values"} & set(data)):
            return data
        fields = data.get("fields")
        named = [str(field) for field in fields.values()] if isinstance(fields, Mapping) else []
        personal = sorted(field for field in named if personal_part(field) is not None)
        if personal:
            raise ValueError(f"the mapping sends personal field(s) {', '.join(personal)} into the warehouse")
        raise ValueError(
            "a petition export has fixed columns (department-systems.md §4); remove [sources.fields] and "
            "[sources.values]"
        )


class IctWorkbookSource(FileSource):
    """The yearly ICT self-assessment workbooks: one per year, the year in its file name."""

    kind: Literal["ict_workbook"] = "ict_workbook"


class EgovWorkbookSource(FileSource):
    """The yearly e-government maturity workbooks: one per year, the year in its file name."""

    kind: Literal["egov_workbook"] = "egov_workbook"


AnySource = Annotated[
    RestOneStopSource
    | SqlLegacySource
    | CatalogueXmlSource
    | CommuneCsvSource
    | PetitionCsvSource
    | IctWorkbookSource
    | EgovWorkbookSource,
    Field(discriminator="kind"),
]

# Every kind by the name its tables give, in the order the documentation lists them.
SOURCE_KINDS: Mapping[str, type[SourceSettings]] = {
    settings.kind_name(): settings
    for settings in (
        RestOneStopSource,
        SqlLegacySource,
        CatalogueXmlSource,
        CommuneCsvSource,
        PetitionCsvSource,
        IctWorkbookSource,
        EgovWorkbookSource,
    )
}
