"""With `exclude_unexpected_values`, Great Expectations no longer computes the values it would drop.

GX 1.x asks every column and column-pair rule for its `unexpected_values` metric (one query per
rule, listing each failing record's value) whatever the result format says, and
`exclude_unexpected_values` only leaves that list out of the result afterwards. On a staged batch
the runner asks GX for the failing records' keys only and reads the values compared back itself
(`expectations.runner`), so those queries were pure cost: a sixth of the suite's time on a year of
5M dossiers. `apply` (called by `expectations.gx_adapter.install`) makes the two base classes leave
the metric out when the result format excludes the values; every other result format is untouched.
"""

from __future__ import annotations

import functools
from typing import Any

from great_expectations.core.metric_function_types import SummarizationMetricNameSuffixes
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation

_VALUES = SummarizationMetricNameSuffixes.UNEXPECTED_VALUES.value
_PATCHED = "_baocao_keys_only"


def _without_values(original: Any) -> Any:
    @functools.wraps(original)
    def get_validation_dependencies(
        self: Any, execution_engine: Any = None, runtime_configuration: dict[str, Any] | None = None
    ) -> Any:
        dependencies = original(self, execution_engine=execution_engine, runtime_configuration=runtime_configuration)
        metric = f"{self.map_metric}.{_VALUES}"
        if dependencies.result_format.get("exclude_unexpected_values") and dependencies.get_metric_configuration(
            metric
        ):
            dependencies.remove_metric_configuration(metric)
        return dependencies

    setattr(get_validation_dependencies, _PATCHED, True)
    return get_validation_dependencies


def apply() -> None:
    """Wrap each base class's `get_validation_dependencies` once (a second call changes nothing)."""
    for base in (ColumnMapExpectation, ColumnPairMapExpectation):
        if not getattr(base.get_validation_dependencies, _PATCHED, False):
            base.get_validation_dependencies = _without_values(base.get_validation_dependencies)  # type: ignore[method-assign]
