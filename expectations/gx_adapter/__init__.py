"""The one place this project changes or extends Great Expectations beyond its public API.

Every patch of GX, and every subclass that leans on GX's private internals, is a module of this
package, declared in `PATCHES` with the internals it relies on (module, attribute, expected shape).
`install` checks those internals on the installed GX, then applies the patches: `expectations.runner`
calls it before it runs a suite, and nothing else patches GX.

Written against great-expectations 1.24 and pinned to it in pyproject.toml (`GX_PIN`,
"great-expectations>=1.24,<1.25"). GX's internals change between minor versions without notice: to
try a new minor, widen the pin and run `tests/expectations/test_gx_adapter.py`, which names each
patch whose internals are gone or changed shape; `install` refuses to run with them
(`GxInternalsError`, fatal: a person must update the patch or pin GX back) rather than fail
half-way through a validation.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

from baocao.core.errors import FatalError

GX_PIN: Final = "great-expectations>=1.24,<1.25"


class GxInternalsError(FatalError):
    """The installed Great Expectations lacks, or has changed, something a patch relies on."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"great-expectations {_installed_version()} (the GX adapter is written for {GX_PIN}) lacks what "
            "the adapter's patches rely on: " + "; ".join(self.problems)
        )


def _installed_version() -> str:
    try:
        return version("great-expectations")
    except PackageNotFoundError:  # pragma: no cover - a dependency of the project
        return "(not installed)"


_ANY: Final = object()  # no expected value


@dataclass(frozen=True)
class Internal:
    """One thing of GX (or of a library under it) that a patch relies on, and the shape it must have.

    `name` is dotted within `module` ("ColumnMapExpectation.get_validation_dependencies"); a pydantic
    or dataclass field counts as found. `parameters`: for a callable, the parameter names the patch
    calls or overrides it with, in this order, as seen through the class (`self` for a method, no `cls`
    for a classmethod); other parameters may come between and after them. `value`: what it must equal.
    `probe`: any other check of what was found, returning what is wrong or None. `shape` says in words
    what the patch needs, and is shown when the check fails.
    """

    module: str
    name: str
    shape: str
    parameters: tuple[str, ...] | None = None
    value: Any = _ANY
    probe: Callable[[Any], str | None] | None = None

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"

    def problem(self) -> str | None:
        """What is wrong with this internal on the installed libraries, or None when it is as expected."""
        try:
            found: Any = importlib.import_module(self.module)
        except ImportError as error:
            return f"module {self.module} cannot be imported ({error}) (needed: {self.shape})"
        for step in self.name.split("."):
            if hasattr(found, step):
                found = getattr(found, step)
            elif step in (getattr(found, "__fields__", None) or {}) or step in getattr(
                found, "__dataclass_fields__", {}
            ):
                found = None  # a field: there is nothing more to check on the class
            else:
                return f"missing (needed: {self.shape})"
        if self.parameters is not None:
            try:
                signature = inspect.signature(found)
            except (TypeError, ValueError):
                return f"not a callable with a signature (needed: {self.shape})"
            names = iter(signature.parameters)
            if not all(name in names for name in self.parameters):  # in order, others allowed between
                return f"signature is {signature}, not with ({', '.join(self.parameters)}) (needed: {self.shape})"
        if self.value is not _ANY and found != self.value:
            return f"is {found!r}, not {self.value!r} (needed: {self.shape})"
        if self.probe is not None:
            try:
                wrong = self.probe(found)
            except Exception as error:  # a changed class may fail to build: named like any other change
                wrong = f"checking it raised {error!r}"
            if wrong:
                return f"{wrong} (needed: {self.shape})"
        return None


@dataclass(frozen=True)
class Patch:
    """A change to GX's behaviour: where its code is, what it changes, what it relies on, how it is applied."""

    name: str
    module: str
    change: str
    relies_on: tuple[Internal, ...]
    # The function of `module` that applies it; None when importing the module is all there is to it
    # (GX registers subclasses itself) or it is applied through configuration (`data_docs_site`).
    apply: str | None = None

    def problems(self) -> list[str]:
        """Each internal this patch relies on that is missing or changed, named with the patch."""
        return [
            f"patch {self.name!r} ({self.module}): {internal.path}: {problem}"
            for internal in self.relies_on
            if (problem := internal.problem()) is not None
        ]


def _is_property(found: Any) -> str | None:
    return None if isinstance(found, property) else f"is a {type(found).__name__}, not a property"


def _sets_a_jinja_environment(view_class: Any) -> str | None:
    import jinja2

    environment = getattr(view_class(), "env", None)
    if not isinstance(environment, jinja2.Environment):
        return f"an instance's env is {type(environment).__name__}, not a jinja2.Environment"
    return None


def _is_class(module: str, name: str) -> Callable[[Any], str | None]:
    """A probe: what was found is the class `module.name` itself (not a subclass of it, not another class)."""

    def probe(found: Any) -> str | None:
        expected = getattr(importlib.import_module(module), name)
        return None if found is expected else f"is {found!r}, not {module}.{name}"

    return probe


_EXPECTATION = "great_expectations.expectations.expectation"
_VALIDATOR = "great_expectations.validator.validator"
_VIEW = "great_expectations.render.view"
_SITE_BUILDER = "great_expectations.render.renderer.site_builder"
_ENGINE = "great_expectations.execution_engine.sqlalchemy_execution_engine"
_QUERY_METRIC = "great_expectations.expectations.metrics.query_metric_provider"
_HERE = __name__

PATCHES: Final[tuple[Patch, ...]] = (
    Patch(
        name="keys_only",
        module=f"{_HERE}.keys_only",
        change="column and column-pair rules skip the unexpected_values metric when the result format excludes it",
        apply="apply",
        relies_on=(
            *(
                Internal(
                    _EXPECTATION,
                    f"{base}.get_validation_dependencies",
                    "a method the patch replaces, called as (execution_engine=…, runtime_configuration=…) and "
                    "returning ValidationDependencies",
                    parameters=("self", "execution_engine", "runtime_configuration"),
                )
                for base in ("ColumnMapExpectation", "ColumnPairMapExpectation")
            ),
            *(
                Internal(_EXPECTATION, f"{base}.map_metric", "the rule's map metric name, read as self.map_metric")
                for base in ("ColumnMapExpectation", "ColumnPairMapExpectation")
            ),
            Internal(
                "great_expectations.core.metric_function_types",
                "SummarizationMetricNameSuffixes.UNEXPECTED_VALUES.value",
                "the suffix of the metric left out (<map_metric>.unexpected_values)",
                value="unexpected_values",
            ),
            Internal(_VALIDATOR, "ValidationDependencies.result_format", "a field: the result format as a dict"),
            Internal(
                _VALIDATOR,
                "ValidationDependencies.get_metric_configuration",
                "looks a metric up by name",
                parameters=("self", "metric_name"),
            ),
            Internal(
                _VALIDATOR,
                "ValidationDependencies.remove_metric_configuration",
                "drops a metric by name",
                parameters=("self", "metric_name"),
            ),
        ),
    ),
    Patch(
        name="docs_views",
        module=f"{_HERE}.docs_views",
        change="Data Docs pages rendered by GX's own views with Jinja's file-system bytecode cache",
        relies_on=(
            *(
                Internal(
                    _VIEW,
                    f"{view}.__init__",
                    "the constructor the subclass passes its arguments on to",
                    parameters=("self", "custom_styles_directory", "custom_views_directory"),
                )
                for view in ("DefaultJinjaPageView", "DefaultJinjaIndexPageView")
            ),
            *(
                Internal(
                    _VIEW,
                    view,
                    "a view whose constructor sets self.env, the jinja2.Environment its pages render with",
                    probe=_sets_a_jinja_environment,
                )
                for view in ("DefaultJinjaPageView", "DefaultJinjaIndexPageView")
            ),
            Internal(
                f"{_VIEW}.view",
                "DefaultJinjaView._get_template",
                "loads each template through self.env",
                parameters=("self", "template_str"),
            ),
            Internal(
                _SITE_BUILDER,
                "SiteBuilder.__init__",
                "a Data Docs site's settings site_index_builder and site_section_builders",
                parameters=("self", "site_index_builder", "site_section_builders"),
            ),
            *(
                Internal(
                    _SITE_BUILDER,
                    f"{builder}.__init__",
                    "a builder setting `view` ({module_name, class_name, …}) that names the view class",
                    parameters=("self", "view"),
                )
                for builder in ("DefaultSiteIndexBuilder", "DefaultSiteSectionBuilder")
            ),
            Internal(
                "great_expectations.data_context.util",
                "instantiate_class_from_config",
                "builds the view from its setting; keys besides module_name and class_name (bytecode_directory) "
                "become constructor arguments",
                parameters=("config", "runtime_environment", "config_defaults"),
            ),
        ),
    ),
    Patch(
        name="duckdb_dialect",
        module=f"{_HERE}.duckdb_dialect",
        change="a SQLAlchemy dialect (duckdb+gx://) through which GX's SQL engine validates staged batches in DuckDB",
        apply="register",
        relies_on=(
            Internal(
                "great_expectations.execution_engine.sqlalchemy_dialect",
                "GXSqlDialect.POSTGRESQL.value",
                "the dialect name GX treats as PostgreSQL (regular expressions as `~`), which the dialect takes",
                value="postgresql",
            ),
            Internal(
                _ENGINE,
                "SqlAlchemyExecutionEngine.dialect_name",
                "a property: the engine's dialect name, which GX compares with GXSqlDialect",
                probe=_is_property,
            ),
            Internal(
                _ENGINE,
                "SqlAlchemyExecutionEngine.execute_query",
                "runs a query and returns its result once the connection is closed (why results are buffered)",
                parameters=("self", "query"),
            ),
            Internal(
                "great_expectations.expectations.metrics.util",
                "get_dialect_regex_expression",
                "writes a regular expression match as `~` for a PostgreSQL dialect",
                parameters=("column", "regex", "dialect", "positive"),
            ),
            Internal(
                "duckdb_engine",
                "Dialect.execution_ctx_cls",
                "duckdb_engine's execution context, the class _BufferedExecutionContext extends",
                probe=_is_class("sqlalchemy.dialects.postgresql.psycopg2", "PGExecutionContext_psycopg2"),
            ),
            Internal(
                "duckdb_engine",
                "Dialect.statement_compiler",
                "duckdb_engine's compiler, the class _Compiler extends",
                probe=_is_class("sqlalchemy.dialects.postgresql.base", "PGCompiler"),
            ),
            Internal(
                "duckdb_engine",
                "Dialect.connect",
                "takes DuckDB's settings as the `config` connection parameter",
                parameters=("self", "cargs", "cparams"),
            ),
            Internal(
                "sqlalchemy.dialects.postgresql.base",
                "PGCompiler._generate_generic_binary",
                "renders `left <op> right`, the IN rendering kept for empty lists",
                parameters=("self", "binary", "opstring"),
            ),
            Internal(
                "sqlalchemy.dialects.postgresql.base",
                "PGCompiler.visit_not_in_op_binary",
                "renders NOT IN, overridden",
                parameters=("self", "binary", "operator"),
            ),
            Internal(
                "sqlalchemy.engine.cursor",
                "FullyBufferedCursorFetchStrategy.__init__",
                "reads a cursor's rows whole",
                parameters=("self", "dbapi_cursor"),
            ),
        ),
    ),
    Patch(
        name="unique_in_batch",
        module=f"{_HERE}.unique_in_batch",
        change="expect_column_values_to_be_unique_in_batch: uniqueness with one GROUP BY, every repeated key listed",
        relies_on=(
            Internal(
                "great_expectations.expectations.metrics.query_metrics.query_table.query_table",
                "QueryTable",
                "the query.table metric provider that RepeatedKeysTable subclasses",
            ),
            Internal(
                _QUERY_METRIC,
                "QueryMetricProvider._get_query_from_metric_value_kwargs",
                "a classmethod: the query of the metric's value kwargs",
                parameters=("metric_value_kwargs",),
            ),
            Internal(
                _QUERY_METRIC,
                "QueryMetricProvider._get_substituted_batch_subquery_from_query_and_batch_selectable",
                "a classmethod: the query with {batch} replaced by the batch's selectable",
                parameters=("query", "batch_selectable", "execution_engine"),
            ),
            Internal(
                _QUERY_METRIC,
                "QueryMetricProvider.query_param_name",
                "the value kwarg that holds the query",
            ),
            Internal(
                "great_expectations.expectations.metrics.metric_provider",
                "metric_value",
                "the decorator that registers a metric function for an engine",
                parameters=("engine",),
            ),
            Internal(
                _ENGINE,
                "SqlAlchemyExecutionEngine.get_compute_domain",
                "the batch's selectable for a table domain",
                parameters=("self", "domain_kwargs", "domain_type"),
            ),
            Internal(
                "great_expectations.expectations",
                "UnexpectedRowsExpectation._validate",
                "overridden: the rule's outcome from its metrics",
                parameters=("self", "metrics", "runtime_configuration", "execution_engine"),
            ),
            Internal(
                "great_expectations.expectations",
                "UnexpectedRowsExpectation.metric_dependencies",
                "the metrics the rule asks for, replaced by the one of RepeatedKeysTable",
            ),
            Internal(
                "great_expectations.expectations",
                "UnexpectedRowsExpectation.unexpected_rows_query",
                "the field holding the rule's SQL, with {batch} for the batch",
            ),
        ),
    ),
)

_lock = threading.Lock()


def check() -> list[str]:
    """Every internal that some patch relies on and the installed libraries lack or have changed, by patch."""
    return [problem for patch in PATCHES for problem in patch.problems()]


def install() -> None:
    """Check what every patch relies on, then apply the patches; a second call changes nothing.

    Raises GxInternalsError, naming each patch and internal, and applies nothing, when GX has changed.
    """
    problems = check()
    if problems:
        raise GxInternalsError(problems)
    with _lock:
        for patch in PATCHES:
            try:
                module = importlib.import_module(patch.module)
            except ImportError as error:
                raise GxInternalsError([f"patch {patch.name!r}: {patch.module} cannot be imported ({error})"]) from None
            if patch.apply is not None:
                getattr(module, patch.apply)()


def data_docs_site(site: dict[str, Any], bytecode_directory: Path) -> dict[str, Any]:
    """A Data Docs site's settings with its pages rendered by the `docs_views` patch's views."""
    from baocao.expectations.gx_adapter import docs_views

    return docs_views.site_config(site, bytecode_directory)


def staged_database_url(database: Path) -> str:
    """The URL through which GX's SQL engine reads a DuckDB database file (the `duckdb_dialect` patch)."""
    from baocao.expectations.gx_adapter import duckdb_dialect

    return f"{duckdb_dialect.DRIVER}:///{database}"
