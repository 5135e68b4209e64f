"""The GX adapter: every patch finds the GX internals it relies on, and says which when it does not.

Run this first when trying a new minor of Great Expectations (the pin is in pyproject.toml): a failure
names the patch and the internal that is gone or has changed shape.
"""

from __future__ import annotations

import ast
import os
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement

from baocao.core.errors import ContractError, FatalError
from baocao.expectations import gx_adapter
from baocao.expectations.gx_adapter import PATCHES, GxInternalsError, Internal

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("patch", PATCHES, ids=[patch.name for patch in PATCHES])
def test_each_patch_finds_what_it_relies_on_in_the_installed_gx(patch: gx_adapter.Patch) -> None:
    problems = patch.problems()
    if problems:
        pytest.fail("GX changed under a patch:\n" + "\n".join(problems), pytrace=False)


def _remove_a_method(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.validator.validator import ValidationDependencies

    monkeypatch.delattr(ValidationDependencies, "remove_metric_configuration")


def _change_a_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    def get_compute_domain(self: Any, domain: dict[str, Any]) -> Any:  # a renamed, shorter signature
        raise AssertionError("not called")

    monkeypatch.setattr(SqlAlchemyExecutionEngine, "get_compute_domain", get_compute_domain)


def _move_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail, as if GX had moved or removed the module.
    module = "great_expectations.expectations.metrics.query_metrics.query_table.query_table"
    monkeypatch.setitem(sys.modules, module, None)


def _replace_a_class(monkeypatch: pytest.MonkeyPatch) -> None:
    from duckdb_engine import Dialect
    from sqlalchemy.dialects.postgresql.base import PGCompiler

    monkeypatch.setattr(Dialect, "statement_compiler", type("DuckDBCompiler", (PGCompiler,), {}))


def _change_a_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.core import metric_function_types

    class Suffixes:
        class UNEXPECTED_VALUES:  # noqa: N801 - stands in for an enum member
            value = "unexpected_value_list"

    monkeypatch.setattr(metric_function_types, "SummarizationMetricNameSuffixes", Suffixes)


@pytest.mark.parametrize(
    ("change", "patch", "internal", "said"),
    [
        (
            _remove_a_method,
            "keys_only",
            "great_expectations.validator.validator.ValidationDependencies.remove_metric_configuration",
            "missing (needed: drops a metric by name)",
        ),
        (
            _change_a_signature,
            "unique_in_batch",
            "great_expectations.execution_engine.sqlalchemy_execution_engine.SqlAlchemyExecutionEngine"
            ".get_compute_domain",
            "signature is (self: 'Any', domain: 'dict[str, Any]') -> 'Any', "
            "not with (self, domain_kwargs, domain_type)",
        ),
        (
            _move_a_module,
            "unique_in_batch",
            "great_expectations.expectations.metrics.query_metrics.query_table.query_table.QueryTable",
            "cannot be imported",
        ),
        (
            _replace_a_class,
            "duckdb_dialect",
            "duckdb_engine.Dialect.statement_compiler",
            "not sqlalchemy.dialects.postgresql.base.PGCompiler",
        ),
        (
            _change_a_constant,
            "keys_only",
            "great_expectations.core.metric_function_types.SummarizationMetricNameSuffixes.UNEXPECTED_VALUES.value",
            "is 'unexpected_value_list', not 'unexpected_values'",
        ),
    ],
    ids=["method removed", "signature changed", "module moved", "class replaced", "constant changed"],
)
def test_a_gx_change_fails_loudly_naming_the_patch_and_the_internal(
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[pytest.MonkeyPatch], None],
    patch: str,
    internal: str,
    said: str,
) -> None:
    change(monkeypatch)
    problems = gx_adapter.check()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"patch {patch!r} (baocao.expectations.gx_adapter.{patch}): {internal}: ")
    assert said in problems[0]
    with pytest.raises(GxInternalsError) as refused:
        gx_adapter.install()
    # Fatal: Airflow does not retry it, the CLI prints it as one line; it names the pin to go back to.
    assert isinstance(refused.value, FatalError)
    assert refused.value.problems == problems
    assert f"patch {patch!r}" in str(refused.value) and internal in str(refused.value)
    assert "great-expectations>=1.24,<1.25" in str(refused.value)


def test_an_internal_that_is_a_field_is_found_and_one_that_is_not_there_is_not() -> None:
    field = Internal("great_expectations.validator.validator", "ValidationDependencies.result_format", "a field")
    assert field.problem() is None
    gone = Internal("great_expectations.validator.validator", "ValidationDependencies.no_such_thing", "a field")
    assert gone.problem() == "missing (needed: a field)"


def test_a_probe_that_raises_is_reported_as_a_change() -> None:
    def builds(found: Any) -> str | None:
        found(required="now")
        return None

    view = "DefaultJinjaPageView"
    internal = Internal("great_expectations.render.view", view, "a view built as before", probe=builds)
    assert internal.problem() == (
        "checking it raised TypeError(\"DefaultJinjaView.__init__() got an unexpected keyword argument 'required'\") "
        "(needed: a view built as before)"
    )


def test_install_applies_every_patch_once() -> None:
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
    from great_expectations.expectations.registry import get_expectation_impl, get_metric_provider

    from baocao.expectations.gx_adapter import duckdb_dialect, keys_only, unique_in_batch

    gx_adapter.install()
    gx_adapter.install()
    for base in (ColumnMapExpectation, ColumnPairMapExpectation):
        wrapped = base.get_validation_dependencies
        assert getattr(wrapped, keys_only._PATCHED)  # wrapped …
        assert not getattr(wrapped.__wrapped__, keys_only._PATCHED, False)  # … once
    assert isinstance(sa.create_engine("duckdb+gx:///:memory:").dialect, duckdb_dialect.GxDuckDBDialect)
    assert gx_adapter.staged_database_url(Path("/d/x.duckdb")) == "duckdb+gx:////d/x.duckdb"
    expectation = "expect_column_values_to_be_unique_in_batch"
    assert get_expectation_impl(expectation) is unique_in_batch.ExpectColumnValuesToBeUniqueInBatch
    engine = SqlAlchemyExecutionEngine.__new__(SqlAlchemyExecutionEngine)  # the registry looks at its type only
    provider, _ = get_metric_provider(unique_in_batch.METRIC, engine)
    assert provider is unique_in_batch.RepeatedKeysTable
    site = gx_adapter.data_docs_site({"class_name": "SiteBuilder"}, Path("/b"))
    assert site["site_index_builder"]["view"]["module_name"] == "baocao.expectations.gx_adapter.docs_views"


def test_a_uniqueness_rule_on_a_column_that_cannot_be_written_as_sql_is_a_contract_error() -> None:
    from baocao.expectations.gx_adapter.unique_in_batch import ExpectColumnValuesToBeUniqueInBatch

    with pytest.raises(ContractError, match=r"'code; DROP TABLE x' is not a plain column name"):
        ExpectColumnValuesToBeUniqueInBatch(column="code; DROP TABLE x")
    with pytest.raises(ContractError, match="None is not a plain column name"):
        ExpectColumnValuesToBeUniqueInBatch()


def test_the_pin_is_pyprojects_and_the_installed_gx_meets_it() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert gx_adapter.GX_PIN in dependencies
    assert gx_adapter.GX_PIN in (gx_adapter.__doc__ or "")
    assert Requirement(gx_adapter.GX_PIN).specifier.contains(version("great-expectations"))


# The GX modules that code outside the adapter may import: the public API (and the context's settings).
PUBLIC_GX = {
    "great_expectations",
    "great_expectations.expectations",
    "great_expectations.expectations.row_conditions",
    "great_expectations.data_context.types.base",
}


def _gx_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "great_expectations"}


def test_only_the_adapter_reaches_into_gx_internals() -> None:
    adapter = ROOT / "expectations" / "gx_adapter"
    outside: dict[str, set[str]] = {}
    for folder in ("baocao", "connectors", "transforms", "expectations", "dags"):
        for directory, _, files in os.walk(ROOT / folder):  # the links in baocao/ are not followed
            if Path(directory).is_relative_to(adapter):
                continue
            for name in files:
                if name.endswith(".py") and (private := _gx_imports(Path(directory) / name) - PUBLIC_GX):
                    outside[str((Path(directory) / name).relative_to(ROOT))] = private
    assert outside == {}, f"GX internals imported outside expectations/gx_adapter: {outside}"
