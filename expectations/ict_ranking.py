"""Suite on the ICT_RANKING report: the central's rules (central-api.md), checked before anything is sent.

Totals and ranks are recomputed here from the report's own rows — exact fractions, and a rank
taken from the totals as stated, as the central does — independently of how the transform made
them. A failure names the rule, the row (block/agency code) and both values.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

SUITE_NAME = "ict_ranking_report"
ROW_LABEL = "row_label"

BLOCKS = ("DEPARTMENT", "DISTRICT", "COMMUNE")
COMPONENTS = ("infrastructure", "human_resources", "applications", "policy")
SCORES = (*COMPONENTS, "total")


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _sum_half_up(values: list[Any]) -> Decimal:
    """The exact sum, rounded to 3 decimals with halves away from zero (scores are non-negative)."""
    thousandths = sum((Fraction(_decimal(v)) for v in values), Fraction(0)) * 1000
    whole = int(thousandths)
    if abs(thousandths - whole) >= Fraction(1, 2):
        whole += 1 if thousandths > 0 else -1
    return Decimal(whole).scaleb(-3)


def report_check_frame(report: pd.DataFrame) -> pd.DataFrame:
    """The report with a row label and, for every rule, the value recomputed from its own rows."""
    frame = report.copy()
    frame[ROW_LABEL] = [f"{block}/{code}" for block, code in zip(frame["block"], frame["code"], strict=True)]
    frame["total"] = [_decimal(value) for value in frame["total"]]
    frame["total_recomputed"] = [
        _sum_half_up(list(row)) for row in frame[list(COMPONENTS)].itertuples(index=False, name=None)
    ]
    ranks: list[int] = []
    counts: list[int] = []
    for block, code, total in zip(frame["block"], frame["code"], frame["total"], strict=True):
        in_block = frame[frame["block"] == block]
        # Dense rank: one more than the number of distinct totals above this one.
        ranks.append(1 + len({t for t in in_block["total"] if t > total}))
        counts.append(int((in_block["code"] == code).sum()))
    frame["rank_recomputed"] = ranks
    frame["code_count_in_block"] = counts
    return frame


def report_suite() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="block",
            value_set=list(BLOCKS),
            description="block is DEPARTMENT, DISTRICT (before 2025-07-01) or COMMUNE.",
        ),
        *[
            gxe.ExpectColumnValuesToBeBetween(
                column=name, min_value=0, description=f"{name} is a non-negative score (Score type: minimum 0)."
            )
            for name in SCORES
        ],
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="total",
            column_B="total_recomputed",
            description="total = infrastructure + human_resources + applications + policy, 3 decimals half-up.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="rank",
            column_B="rank_recomputed",
            description="rank = dense rank by total, descending, within the block (equal totals share a rank).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="code_count_in_block",
            min_value=1,
            max_value=1,
            description="An agency code appears once within its block: one agency, one score line.",
        ),
    ]
