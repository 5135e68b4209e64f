"""Suite on the SERVICE_INDEX report: the central's sums, the ruleset's scoring, the province's counts.

central-api.md checks that a group's score is the sum of its metrics and the total the sum of the
groups; the rest follows from DOMAIN.md ("SERVICE_INDEX") and the ruleset as the report states it
(each metric line carries its max, target and zero-denominator rule). Every value is recomputed here
from the report's own lines, in exact fractions, independently of the transform. A failure names
the rule, the line (agency, group/metric) and both values.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

from baocao.core.layouts.service_index import (
    AGENCY,
    CONNECTED,
    DENOMINATOR,
    GROUP,
    GROUP_IDS,
    KIND,
    LINE,
    MAX,
    METRIC,
    NUMERATOR,
    SCORE,
    TARGET,
    ZERO_RULE,
    Kind,
    Line,
    ZeroDenominator,
)

SUITE_NAME = "service_index_report"
ROW_LABEL = "row_label"
CONNECTED_STATE, NOT_CONNECTED_STATE = "CONNECTED", "NOT_CONNECTED"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def _fraction(value: Any) -> Fraction:
    return Fraction(value if isinstance(value, Decimal) else Decimal(str(value)))


def _text(value: Fraction) -> str:
    """An exact non-negative value as 3 decimals, half-up (negative values: half away from zero)."""
    thousandths = abs(value) * 1000
    whole = int(thousandths)
    if thousandths - whole >= Fraction(1, 2):
        whole += 1
    sign = "-" if value < 0 and whole else ""
    return f"{sign}{whole // 1000}.{whole % 1000:03d}"


def _stated(value: Any) -> str | None:
    return _text(_fraction(value)) if _present(value) else None


def _label(line: dict[str, Any]) -> str:
    entity = f"province {line[AGENCY]}" if line[KIND] == Kind.PROVINCE else str(line[AGENCY])
    if line[LINE] == Line.METRIC:
        return f"{entity} {line[GROUP]}/{line[METRIC]}"
    if line[LINE] == Line.GROUP:
        return f"{entity} {line[GROUP]}"
    return f"{entity} total"


def _recomputed_metric_score(line: dict[str, Any]) -> str | None:
    """The metric's score from its own numerator, denominator, max, target and zero rule (None: cannot say)."""
    numerator, denominator = line[NUMERATOR], line[DENOMINATOR]
    if not (_present(numerator) and _present(denominator)):
        return "0.000"  # not connected: no points
    maximum = _fraction(line[MAX])
    if int(denominator) == 0:
        return _text(maximum) if line[ZERO_RULE] == ZeroDenominator.FULL.value else "0.000"
    if not _present(line[TARGET]) or _fraction(line[TARGET]) <= 0:
        return None
    earned = maximum * Fraction(int(numerator), int(denominator)) / _fraction(line[TARGET])
    return _text(max(Fraction(0), min(maximum, earned)))


def report_check_frame(report: pd.DataFrame) -> pd.DataFrame:
    """The report with a row label and, for every rule, the value recomputed from its own lines."""
    lines = report.to_dict("records")
    frame = report[[KIND, AGENCY, LINE, GROUP, METRIC]].copy().reset_index(drop=True)
    frame[ROW_LABEL] = [_label(line) for line in lines]
    frame["numerator_count"] = [float(line[NUMERATOR]) if _present(line[NUMERATOR]) else None for line in lines]
    frame["denominator_count"] = [float(line[DENOMINATOR]) if _present(line[DENOMINATOR]) else None for line in lines]
    frame["score_value"] = [float(_fraction(line[SCORE])) for line in lines]
    frame["max_value"] = [float(_fraction(line[MAX])) for line in lines]

    def entity(line: dict[str, Any]) -> tuple[str, str]:
        return str(line[KIND]), str(line[AGENCY])

    metric_scores: dict[tuple[tuple[str, str], str], list[Fraction]] = defaultdict(list)
    metric_maxima: dict[tuple[tuple[str, str], str], list[Fraction]] = defaultdict(list)
    group_scores: dict[tuple[str, str], list[Fraction]] = defaultdict(list)
    group_maxima: dict[tuple[str, str], list[Fraction]] = defaultdict(list)
    group_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    agency_counts: dict[tuple[str, str], list[int]] = defaultdict(list)  # (metric, column) → agencies' counts
    for line in lines:
        if line[LINE] == Line.METRIC:
            metric_scores[(entity(line), str(line[GROUP]))].append(_fraction(line[SCORE]))
            metric_maxima[(entity(line), str(line[GROUP]))].append(_fraction(line[MAX]))
            if line[KIND] == Kind.AGENCY:
                for column in (NUMERATOR, DENOMINATOR):
                    if _present(line[column]):
                        agency_counts[(str(line[METRIC]), column)].append(int(line[column]))
        elif line[LINE] == Line.GROUP:
            group_scores[entity(line)].append(_fraction(line[SCORE]))
            group_maxima[entity(line)].append(_fraction(line[MAX]))
            group_ids[entity(line)].append(str(line[GROUP]))

    is_metric = [line[LINE] == Line.METRIC for line in lines]
    is_group = [line[LINE] == Line.GROUP for line in lines]
    is_total = [line[LINE] == Line.TOTAL for line in lines]
    frame["connection_state"] = [
        (
            CONNECTED_STATE
            if line[CONNECTED] is True and _present(line[NUMERATOR]) and _present(line[DENOMINATOR])
            else NOT_CONNECTED_STATE
            if line[CONNECTED] is False and not _present(line[NUMERATOR]) and not _present(line[DENOMINATOR])
            else f"connected={line[CONNECTED]}, numerator={line[NUMERATOR]}, denominator={line[DENOMINATOR]}"
        )
        if metric
        else None
        for line, metric in zip(lines, is_metric, strict=True)
    ]
    frame["metric_score"] = [_stated(line[SCORE]) if m else None for line, m in zip(lines, is_metric, strict=True)]
    frame["metric_score_recomputed"] = [
        _recomputed_metric_score(line) if m else None for line, m in zip(lines, is_metric, strict=True)
    ]
    frame["group_score"] = [_stated(line[SCORE]) if g else None for line, g in zip(lines, is_group, strict=True)]
    frame["group_score_recomputed"] = [
        _text(sum(metric_scores[(entity(line), str(line[GROUP]))], Fraction(0))) if g else None
        for line, g in zip(lines, is_group, strict=True)
    ]
    frame["group_max"] = [_stated(line[MAX]) if g else None for line, g in zip(lines, is_group, strict=True)]
    frame["group_max_recomputed"] = [
        _text(sum(metric_maxima[(entity(line), str(line[GROUP]))], Fraction(0))) if g else None
        for line, g in zip(lines, is_group, strict=True)
    ]
    frame["total"] = [_stated(line[SCORE]) if t else None for line, t in zip(lines, is_total, strict=True)]
    frame["total_recomputed"] = [
        _text(sum(group_scores[entity(line)], Fraction(0))) if t else None
        for line, t in zip(lines, is_total, strict=True)
    ]
    frame["total_max"] = [_stated(line[MAX]) if t else None for line, t in zip(lines, is_total, strict=True)]
    frame["total_max_recomputed"] = [
        _text(sum(group_maxima[entity(line)], Fraction(0))) if t else None
        for line, t in zip(lines, is_total, strict=True)
    ]
    frame["distinct_groups"] = [
        float(len(set(group_ids[entity(line)]))) if t else None for line, t in zip(lines, is_total, strict=True)
    ]
    frame["group_lines"] = [
        float(len(group_ids[entity(line)])) if t else None for line, t in zip(lines, is_total, strict=True)
    ]
    frame["province_entities"] = float(
        sum(1 for line in lines if line[KIND] == Kind.PROVINCE and line[LINE] == Line.TOTAL)
    )
    # The province's counts are its agencies' sums. A province metric reported as not connected is
    # right only when no agency had a known base row (their denominators sum to 0).
    province_metric = [line[KIND] == Kind.PROVINCE and m for line, m in zip(lines, is_metric, strict=True)]
    for column in (NUMERATOR, DENOMINATOR):
        stated: list[str | None] = []
        recomputed: list[str | None] = []
        for line, province in zip(lines, province_metric, strict=True):
            if not province:
                stated.append(None)
                recomputed.append(None)
                continue
            total = sum(agency_counts[(str(line[METRIC]), column)])
            known = sum(agency_counts[(str(line[METRIC]), DENOMINATOR)]) > 0
            stated.append(str(int(line[column])) if _present(line[column]) else None)
            recomputed.append(str(total) if _present(line[column]) or known else None)
        frame[f"province_{column}"] = stated
        frame[f"province_{column}_recomputed"] = recomputed
    return frame


def _equal(column: str, description: str) -> gxe.Expectation:
    return gxe.ExpectColumnPairValuesToBeEqual(
        column_A=column,
        column_B=f"{column}_recomputed",
        ignore_row_if="both_values_are_missing",
        description=description,
    )


def report_suite() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column=KIND, value_set=[Kind.AGENCY, Kind.PROVINCE], description="kind is AGENCY or PROVINCE."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=LINE, value_set=[Line.METRIC, Line.GROUP, Line.TOTAL], description="line is METRIC, GROUP or TOTAL."
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=GROUP,
            value_set=list(GROUP_IDS),
            description="Groups are the central's six IndexGroup values (submission-v1.xsd).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="province_entities",
            min_value=1,
            max_value=1,
            description="The report has the province's index exactly once (DOMAIN.md: per agency and the province).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="distinct_groups",
            min_value=len(GROUP_IDS),
            max_value=len(GROUP_IDS),
            description="Every agency has the six groups (the schema requires exactly six).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="group_lines",
            min_value=len(GROUP_IDS),
            max_value=len(GROUP_IDS),
            description="Every agency lists each group once.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="connection_state",
            value_set=[CONNECTED_STATE, NOT_CONNECTED_STATE],
            description=(
                "A metric either has numerator and denominator (its source is connected) or neither "
                "(reported as not connected): a figure is never invented."
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="numerator_count", min_value=0, description="numerator is a non-negative count."
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="denominator_count", min_value=0, description="denominator is a non-negative count."
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="denominator_count",
            column_B="numerator_count",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="numerator <= denominator: a metric's rate is at most 100 %.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="score_value", min_value=0, description="Scores are non-negative (the schemas' Score)."
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="max_value", column_B="score_value", or_equal=True, description="score <= max."
        ),
        _equal(
            "metric_score",
            "metric score = min(max, max × numerator / denominator / target), 3 decimals half-up; a zero "
            "denominator gives 0 (full points where the ruleset says so); not connected gives 0.",
        ),
        _equal("group_score", "group score = sum of its metrics' scores (central rule)."),
        _equal("group_max", "group max = sum of its metrics' maxima."),
        _equal("total", "total = sum of the groups' scores (central rule)."),
        _equal("total_max", "total max = sum of the groups' maxima."),
        _equal("province_numerator", "the province's numerator = the sum of its agencies' numerators."),
        _equal("province_denominator", "the province's denominator = the sum of its agencies' denominators."),
    ]
