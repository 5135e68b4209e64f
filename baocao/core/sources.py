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

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, ValidationInfo, model_validator

from baocao.core.canonical import PERSONAL_FIELDS
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
    if not isinstance(value, str):
        raise ValueError(f"must be a URL (text), got {value!r}")
    return value.rstrip("/")


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


class PulledSource(MappedSource):
    """A system asked for what changed since the last merged batch."""

    # Records committed late under an earlier change time would be missed by a cursor that only moves
    # forward: every pull reaches back this far, and upserts by code absorb the repeats.
    overlap_minutes: int = Field(60, ge=0)


class FileSource(SourceSettings):
    """A source delivered as files: one file, or a drop folder of them."""

    path: PathInFolder


class RestOneStopSource(PulledSource):
    """The one-stop-shop REST API (department-systems.md §1): OAuth client credentials, cursor paging."""

    kind: Literal["rest_onestop"] = "rest_onestop"
    base_url: Url
    client_id: SecretFromEnvironment = Field(alias="client_id_env")
    client_secret: SecretFromEnvironment = Field(alias="client_secret_env")
    page_size: int = Field(500, ge=1)
    # More pages than this in one pull means a server that pages forever: the pull stops, fatal.
    max_pages: int = Field(100_000, ge=1)
    timeout_seconds: float = Field(RetryPolicy.timeout_seconds, gt=0)
    deadline_seconds: float | None = Field(None, gt=0)  # default: 4 x timeout_seconds
    max_attempts: int = Field(RetryPolicy.max_attempts, ge=1)
    backoff_base_seconds: float = Field(RetryPolicy.backoff_base_seconds, ge=0)
    backoff_max_seconds: float = Field(RetryPolicy.backoff_max_seconds, ge=0)
    max_wait_seconds: float = Field(RetryPolicy.max_wait_seconds, ge=0)

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
    chunk_size: int | None = Field(None, ge=1)
    connect_timeout_seconds: float | None = Field(None, gt=0)
    statement_timeout_seconds: float | None = Field(None, gt=0)


class CatalogueXmlSource(SourceSettings):
    """The provincial procedure catalogue export (department-systems.md §3), over HTTP or as files."""

    kind: Literal["catalogue_xml"] = "catalogue_xml"
    base_url: Url | None = None
    path: PathInFolder | None = None  # a file or a drop folder, when there is no base_url
    timeout_seconds: float = Field(RetryPolicy.timeout_seconds, gt=0)
    deadline_seconds: float | None = Field(None, gt=0)  # the whole download; default: 4 x timeout_seconds

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
        personal = sorted(field for field in named if field.split(".")[0] in PERSONAL_FIELDS)
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
