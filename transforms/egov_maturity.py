"""EGOV_MATURITY: the yearly e-government maturity levels of agencies, per block (DOMAIN.md, "EGOV_MATURITY").

Pure assembly: a frame of readiness scores and levels per agency in (as the spreadsheet reader
produces it), the agencies and a summary per block out — for each of the five levels, how many of
the block's agencies are at it and their share, × 100 with 2 decimals half-up.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

import pandas as pd
from lxml import etree

from baocao.core.periods import Period
from baocao.transforms.ict_ranking import (
    BLOCK,
    BLOCK_ORDER,
    CODE,
    NAME,
    ScoreInputError,
    parse_blocks,
    require_columns,
    score_text,
    score_value,
)
from baocao.transforms.render import qualified


class MaturityLevel(StrEnum):
    I = "I"  # noqa: E741 - the level's official name
    II = "II"
    III = "III"
    IV = "IV"
    UNRANKED = "UNRANKED"  # không xếp hạng


LEVEL_ORDER = (MaturityLevel.I, MaturityLevel.II, MaturityLevel.III, MaturityLevel.IV, MaturityLevel.UNRANKED)

READINESS_SCORE, LEVEL = "readiness_score", "level"
COUNT, SHARE = "count", "share"
INPUT_COLUMNS = (BLOCK, CODE, NAME, READINESS_SCORE, LEVEL)
AGENCY_COLUMNS = INPUT_COLUMNS
SUMMARY_COLUMNS = (BLOCK, LEVEL, COUNT, SHARE)


class EgovMaturityReport(NamedTuple):
    """The report as two frames: `agencies` (AGENCY_COLUMNS) and `summary` (SUMMARY_COLUMNS, 5 rows per block)."""

    agencies: pd.DataFrame
    summary: pd.DataFrame


def share(count: int, agencies: int) -> Decimal:
    """count / agencies × 100, 2 decimals half-up, in integers (no binary rounding can tip a half)."""
    hundredths, remainder = divmod(count * 10_000, agencies)
    if 2 * remainder >= agencies:
        hundredths += 1
    return Decimal(hundredths).scaleb(-2)


def _level(value: Any, where: str) -> MaturityLevel:
    try:
        return MaturityLevel(str(value).strip())
    except ValueError:
        raise ScoreInputError(
            f"{where}: unknown maturity level {value!r} (expected one of {', '.join(LEVEL_ORDER)})"
        ) from None


def assemble_egov_maturity(scores: pd.DataFrame, period: Period) -> EgovMaturityReport:
    """Agency levels → (agencies, summary): blocks in report order, agencies by code, summary for all five levels.

    Negative scores and duplicated codes pass through: the report suite names them before anything is sent.
    """
    require_columns(scores, INPUT_COLUMNS, "EGOV_MATURITY")
    if scores.empty:
        raise ScoreInputError(f"EGOV_MATURITY {period.id}: no agency scores")
    frame = pd.DataFrame({BLOCK: parse_blocks(scores, period, "EGOV_MATURITY")})
    frame[CODE] = [str(code).strip() for code in scores[CODE]]
    frame[NAME] = list(scores[NAME])
    where = [f"EGOV_MATURITY {period.id}: agency {code}" for code in frame[CODE]]
    frame[READINESS_SCORE] = [
        score_value(value, f"{w}, {READINESS_SCORE}") for w, value in zip(where, scores[READINESS_SCORE], strict=True)
    ]
    frame[LEVEL] = [_level(value, w) for w, value in zip(where, scores[LEVEL], strict=True)]
    agencies: list[pd.DataFrame] = []
    summary: list[dict[str, Any]] = []
    for block in BLOCK_ORDER:
        rows = frame[frame[BLOCK] == block]
        if rows.empty:
            continue
        agencies.append(rows.sort_values(CODE, kind="stable"))
        for level in LEVEL_ORDER:
            count = int((rows[LEVEL] == level).sum())
            summary.append({BLOCK: str(block), LEVEL: str(level), COUNT: count, SHARE: share(count, len(rows))})
    agency_frame = pd.concat(agencies, ignore_index=True)
    for name in (BLOCK, LEVEL):
        agency_frame[name] = [str(value) for value in agency_frame[name]]
    summary_frame = pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
    summary_frame[COUNT] = summary_frame[COUNT].astype("int64")
    return EgovMaturityReport(agency_frame[list(AGENCY_COLUMNS)], summary_frame)


def _share_text(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}"


def _report_blocks(report: EgovMaturityReport) -> list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """(block, agency rows, summary rows) per block, in the order the agencies frame lists the blocks."""
    agencies: dict[str, list[dict[str, Any]]] = {}
    for row in report.agencies.to_dict("records"):
        agencies.setdefault(str(row[BLOCK]), []).append(row)
    summary: dict[str, list[dict[str, Any]]] = {}
    for row in report.summary.to_dict("records"):
        summary.setdefault(str(row[BLOCK]), []).append(row)
    return [(block, rows, summary.get(block, [])) for block, rows in agencies.items()]


def egov_xml_body(parent: etree._Element, report: EgovMaturityReport) -> None:
    """Fill `<EgovMaturity>`: per block its `<Agency>` elements, then its five `<Summary>` elements."""
    for block, agency_rows, summary_rows in _report_blocks(report):
        element = etree.SubElement(parent, qualified("Block"), id=block)
        for row in agency_rows:
            etree.SubElement(
                element,
                qualified("Agency"),
                code=str(row[CODE]),
                readinessScore=score_text(row[READINESS_SCORE]),
                level=str(row[LEVEL]),
            )
        for row in summary_rows:
            etree.SubElement(
                element,
                qualified("Summary"),
                level=str(row[LEVEL]),
                count=str(int(row[COUNT])),
                share=_share_text(row[SHARE]),
            )


def egov_json_body(report: EgovMaturityReport) -> dict[str, Any]:
    """The `egov_maturity` body (scores and shares as the shortest floats that read back to their decimals)."""
    return {
        "blocks": [
            {
                "id": block,
                "agencies": [
                    {
                        "code": str(row[CODE]),
                        "readiness_score": float(score_text(row[READINESS_SCORE])),
                        "level": str(row[LEVEL]),
                    }
                    for row in agency_rows
                ],
                "summary": [
                    {"level": str(row[LEVEL]), "count": int(row[COUNT]), "share": float(_share_text(row[SHARE]))}
                    for row in summary_rows
                ],
            }
            for block, agency_rows, summary_rows in _report_blocks(report)
        ]
    }
