"""A key unique within a batch, checked by Great Expectations with one GROUP BY.

GX's own `ExpectColumnValuesToBeUnique` computes uniqueness with a window (`count(*) OVER
(PARTITION BY key)`) and does it three times (the count, the failing values, the failing keys):
on a year's batch of 5M dossiers that was 2.6 of the suite's 4.7 seconds of SQL. This expectation is
a GX `UnexpectedRowsExpectation` (SQL with the batch as `{batch}`, results and Data Docs as for any
other rule) whose query lists each repeated key once, with the number of rows that carry it, in a
single aggregation. Its own metric fetches every such row: GX's stops at 200, and a failing rule that
does not name every failing record holds the whole batch back (`expectations.runner`).

Both classes register themselves with GX when this module is imported (GX's own registries of
metrics and expectations): `expectations.dossiers` imports it, and so does `gx_adapter.install`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import great_expectations.expectations as gxe
from great_expectations.compatibility.sqlalchemy import sqlalchemy as sa
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.query_metrics.query_table.query_table import QueryTable

from baocao.core.errors import ContractError

METRIC = "baocao_repeated_keys.table"
# Rows of the query fetched at most: one more than the runner lists, so that a longer list is seen
# as incomplete instead of silently cut.
FETCH_LIMIT = 1_000_001


class RepeatedKeysTable(QueryTable):
    """The rows of `unexpected_rows_query`, all of them (up to FETCH_LIMIT)."""

    metric_name = METRIC
    value_keys = ("unexpected_rows_query",)
    query_param_name: ClassVar[str] = "unexpected_rows_query"

    @metric_value(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(
        cls,
        execution_engine: SqlAlchemyExecutionEngine,
        metric_domain_kwargs: dict[str, Any],
        metric_value_kwargs: dict[str, Any],
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any],
    ) -> list[dict[str, Any]]:
        batch_selectable, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        query = cls._get_substituted_batch_subquery_from_query_and_batch_selectable(
            query=cls._get_query_from_metric_value_kwargs(metric_value_kwargs),
            batch_selectable=batch_selectable,
            execution_engine=execution_engine,
        )
        rows = execution_engine.execute_query(sa.text(query)).fetchmany(FETCH_LIMIT)
        return [row._asdict() for row in rows]


class ExpectColumnValuesToBeUniqueInBatch(gxe.UnexpectedRowsExpectation):
    """Each non-null value of `column` appears in one row of the batch only.

    Fails with one unexpected row per repeated value: `{column: value, "copies": n}`.
    """

    column: str
    metric_dependencies: ClassVar[tuple[str, ...]] = (METRIC,)

    def __init__(self, **kwargs: Any) -> None:
        column = kwargs.get("column")
        if not isinstance(column, str) or not column.replace("_", "").isalnum():
            raise ContractError(
                f"expect_column_values_to_be_unique_in_batch: {column!r} is not a plain column name "
                "(letters, digits and _), so it cannot be written into the rule's SQL"
            )
        kwargs.setdefault(
            "unexpected_rows_query",
            f"SELECT {column}, COUNT(*) AS copies FROM {{batch}} WHERE {column} IS NOT NULL "
            f"GROUP BY {column} HAVING COUNT(*) > 1 ORDER BY {column}",
        )
        super().__init__(**kwargs)

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        repeated: list[dict[str, Any]] = metrics[METRIC]
        listed = repeated[: FETCH_LIMIT - 1]  # a count above the list's length marks it incomplete
        return {
            "success": not repeated,
            "result": {
                "observed_value": sum(int(row["copies"]) for row in listed),
                "unexpected_count": len(repeated),
                "details": {"unexpected_rows": listed},
            },
        }
