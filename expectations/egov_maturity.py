"""Suite on the EGOV_MATURITY report: the central's rules (central-api.md), checked before anything is sent.

The report's two frames are checked as one: agency rows and summary rows side by side (`kind`).
Each summary count is recounted from the listed agencies and each share recomputed exactly from
that count, independently of how the transform made them. A failure names the rule, the row
(block/agency code, or block and level of a summary line) and both values.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

SUITE_NAME = "egov_maturity_report"
ROW_LABEL = "row_label"

AGENCY, SUMMARY = "AGENCY", "SUMMARY"
BLOCKS = ("DEPARTMENT", "DISTRICT", "COMMUNE")
LEVELS = ("I", "II", "III", "IV", "UNRANKED")


def _share_half_up(count: int, agencies: int) -> Decimal | None:
    if agencies == 0:
        return None
    hundredths = Fraction(count * 100, agencies) * 100
    whole = int(hundredths)
    if hundredths - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole).scaleb(-2)


def _objects(values: list[Any]) -> pd.Series:
    # Object dtype keeps integers as integers beside the missing values (no 9.0 in a failure message).
    return pd.Series(values, dtype=object)


def report_check_frame(agencies: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Agency and summary rows in one frame with a row label and the recomputed counts and shares."""
    rows: list[dict[str, Any]] = [
        {
            "kind": AGENCY,
            ROW_LABEL: f"{r['block']}/{r['code']}",
            "block": r["block"],
            "code": r["code"],
            "level": r["level"],
            "readiness_score": r["readiness_score"],
        }
        for r in agencies.to_dict("records")
    ]
    rows += [
        {
            "kind": SUMMARY,
            ROW_LABEL: f"{r['block']} summary, level {r['level']}",
            "block": r["block"],
            "level": r["level"],
            "count": int(r["count"]),
            "share": Decimal(str(r["share"])),
        }
        for r in summary.to_dict("records")
    ]
    frame = pd.DataFrame(rows, columns=["kind", ROW_LABEL, "block", "code", "level", "readiness_score"])
    frame["count"] = _objects([r.get("count") for r in rows])
    frame["share"] = _objects([r.get("share") for r in rows])
    listed = agencies.groupby(["block", "level"]).size().to_dict()
    in_block = agencies.groupby("block").size().to_dict()
    same_code = agencies.groupby(["block", "code"]).size().to_dict()
    summarised = summary.groupby("block")["level"].nunique().to_dict()
    count_listed: list[Any] = []
    share_recomputed: list[Any] = []
    code_count: list[Any] = []
    for r in rows:
        block = r["block"]
        if r["kind"] == SUMMARY:
            count = int(listed.get((block, r["level"]), 0))
            count_listed.append(count)
            share_recomputed.append(_share_half_up(count, int(in_block.get(block, 0))))
            code_count.append(None)
        else:
            count_listed.append(None)
            share_recomputed.append(None)
            code_count.append(int(same_code[(block, r["code"])]))
    frame["count_listed"] = _objects(count_listed)
    frame["share_recomputed"] = _objects(share_recomputed)
    frame["code_count_in_block"] = _objects(code_count)
    frame["levels_summarised_in_block"] = [int(summarised.get(block, 0)) for block in frame["block"]]
    return frame


def report_suite() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="block",
            value_set=list(BLOCKS),
            description="block is DEPARTMENT, DISTRICT (before 2025-07-01) or COMMUNE.",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="level",
            value_set=list(LEVELS),
            description="level is I, II, III, IV or UNRANKED (không xếp hạng).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="readiness_score",
            min_value=0,
            description="readiness_score is a non-negative score (Score type: minimum 0).",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="code_count_in_block",
            min_value=1,
            max_value=1,
            description="An agency code appears once within its block: a duplicate would be counted twice.",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="levels_summarised_in_block",
            min_value=len(LEVELS),
            max_value=len(LEVELS),
            description="Each block's summary lists each of the five levels I, II, III, IV, UNRANKED once.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="count",
            column_B="count_listed",
            ignore_row_if="either_value_is_missing",
            description="A summary count equals the number of the block's listed agencies at that level.",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="share",
            column_B="share_recomputed",
            ignore_row_if="either_value_is_missing",
            description="share = listed agencies at the level / agencies in the block × 100, 2 decimals half-up.",
        ),
    ]
