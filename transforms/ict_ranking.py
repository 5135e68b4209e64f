"""ICT_RANKING: the yearly IT-application ranking of agencies, per block (DOMAIN.md, "ICT_RANKING").

Pure assembly: a frame of component scores per agency in (as the spreadsheet reader produces it),
the ranked report out — total = sum of the four components, dense rank by total within each block.
Also the pieces EGOV_MATURITY shares with it: blocks, the district cut-off and score parsing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

import pandas as pd
from lxml import etree

from baocao.core.errors import FatalError
from baocao.core.periods import Period
from baocao.core.registry import DISTRICT_LEVEL_ABOLISHED, Block, has_district_level
from baocao.transforms.render import qualified

# Report order of the blocks; DISTRICT only for periods starting before 2025-07-01 (`has_district_level`).
BLOCK_ORDER = (Block.DEPARTMENT, Block.DISTRICT, Block.COMMUNE)
SCORE_STEP = Decimal("0.001")

# Input: one row per agency, as the score-sheet reader produces it.
BLOCK, CODE, NAME = "block", "code", "name"
COMPONENTS = ("infrastructure", "human_resources", "applications", "policy")
INPUT_COLUMNS = (BLOCK, CODE, NAME, *COMPONENTS)
# Output: the input columns plus the computed total and rank.
TOTAL, RANK = "total", "rank"
REPORT_COLUMNS = (BLOCK, RANK, CODE, NAME, *COMPONENTS, TOTAL)


class ScoreInputError(FatalError):
    """A score sheet that breaks the input contract (unknown block, missing or over-precise score):
    re-running cannot help, the sheet must be corrected."""


def require_columns(scores: pd.DataFrame, columns: tuple[str, ...], report_type: str) -> None:
    missing = [name for name in columns if name not in scores.columns]
    if missing:
        raise ScoreInputError(f"{report_type}: the score frame lacks column(s) {', '.join(missing)}")


def allowed_blocks(period: Period) -> tuple[Block, ...]:
    """The blocks a report for `period` may have, in report order."""
    if has_district_level(period):
        return BLOCK_ORDER
    return tuple(block for block in BLOCK_ORDER if block is not Block.DISTRICT)


def parse_blocks(scores: pd.DataFrame, period: Period, report_type: str) -> list[Block]:
    """Each row's block; unknown blocks, or DISTRICT rows in a period after the districts, are an error
    that names every agency concerned (the first ten)."""
    allowed = allowed_blocks(period)
    blocks: list[Block] = []
    unknown: list[str] = []
    abolished: list[str] = []
    for code, text in zip(scores[CODE], scores[BLOCK], strict=True):
        try:
            block = Block(str(text).strip())
        except ValueError:
            unknown.append(f"{code} ({text!r})")
            continue
        if block not in allowed:
            abolished.append(str(code))
        blocks.append(block)
    if unknown:
        raise ScoreInputError(
            f"{report_type} {period.id}: unknown block for agency {', '.join(unknown[:10])}: "
            f"expected one of {', '.join(BLOCK_ORDER)}"
        )
    if abolished:
        raise ScoreInputError(
            f"{report_type} {period.id}: agency {', '.join(abolished[:10])} in block DISTRICT, but districts were "
            f"abolished on {DISTRICT_LEVEL_ABOLISHED.isoformat()} and this period starts on "
            f"{period.start.isoformat()}: re-assign them to their successor units or drop the rows"
        )
    return blocks


def score_value(value: Any, where: str) -> Decimal:
    """A score as an exact Decimal with 3 decimals.

    More than 3 decimals is refused rather than rounded: the central recomputes totals from the
    components as written (3 decimals), so a rounded component could break its total.
    """
    if isinstance(value, bool) or value is None or (isinstance(value, float) and pd.isna(value)):
        raise ScoreInputError(f"{where}: score missing")
    try:
        # A float (a spreadsheet cell read without conversion) goes through its shortest repr.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ScoreInputError(f"{where}: score {value!r} is not a number") from None
    if not number.is_finite():
        raise ScoreInputError(f"{where}: score {value!r} is not a number")
    try:
        quantised = number.quantize(SCORE_STEP)
    except InvalidOperation:
        raise ScoreInputError(f"{where}: score {value!r} is out of range") from None
    if quantised != number:
        raise ScoreInputError(f"{where}: score {number} has more than 3 decimals")
    return quantised


def score_text(value: Decimal) -> str:
    """A score as the schemas write it: exactly 3 decimals ("465.000")."""
    return f"{value.quantize(SCORE_STEP, rounding=ROUND_HALF_UP)}"


def score_total(components: list[Decimal]) -> Decimal:
    """Sum of the components, 3 decimals half-up (exact: no binary floating point anywhere)."""
    with localcontext() as context:
        context.prec = 50
        return sum(components, Decimal(0)).quantize(SCORE_STEP, rounding=ROUND_HALF_UP)


def dense_ranks(totals: list[Decimal]) -> list[int]:
    """Dense rank, highest first: equal totals share a rank, the next distinct total gets the next integer."""
    rank_of = {total: position for position, total in enumerate(sorted(set(totals), reverse=True), start=1)}
    return [rank_of[total] for total in totals]


def assemble_ict_ranking(scores: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Agency scores → the ranking: `REPORT_COLUMNS`, blocks in report order, each by rank then code.

    Scores are Decimals (or text/ints that convert exactly) with at most 3 decimals. Negative scores
    and duplicated codes pass through: the report suite names them before anything is sent.
    """
    require_columns(scores, INPUT_COLUMNS, "ICT_RANKING")
    if scores.empty:
        raise ScoreInputError(f"ICT_RANKING {period.id}: no agency scores")
    frame = pd.DataFrame({BLOCK: parse_blocks(scores, period, "ICT_RANKING")})
    frame[CODE] = [str(code).strip() for code in scores[CODE]]
    frame[NAME] = list(scores[NAME])
    for name in COMPONENTS:
        frame[name] = [
            score_value(value, f"ICT_RANKING {period.id}: agency {code}, {name}")
            for code, value in zip(frame[CODE], scores[name], strict=True)
        ]
    frame[TOTAL] = [score_total(list(row)) for row in frame[list(COMPONENTS)].itertuples(index=False)]
    blocks: list[pd.DataFrame] = []
    for block in BLOCK_ORDER:
        rows = frame[frame[BLOCK] == block].copy()
        if rows.empty:
            continue
        rows[RANK] = dense_ranks(list(rows[TOTAL]))
        blocks.append(rows.sort_values([RANK, CODE], kind="stable"))
    report = pd.concat(blocks, ignore_index=True)
    report[BLOCK] = [str(block) for block in report[BLOCK]]
    report[RANK] = report[RANK].astype("int64")
    return report[list(REPORT_COLUMNS)]


def _report_blocks(report: pd.DataFrame) -> list[tuple[str, list[dict[str, Any]]]]:
    """The report's rows grouped by block, blocks in the order they first appear (report order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in report.to_dict("records"):
        grouped.setdefault(str(row[BLOCK]), []).append(row)
    return list(grouped.items())


def ict_xml_body(parent: etree._Element, report: pd.DataFrame) -> None:
    """Fill `<IctRanking>`: one `<Block id>` per block, one `<Agency>` per row (scores with 3 decimals)."""
    for block, rows in _report_blocks(report):
        element = etree.SubElement(parent, qualified("Block"), id=block)
        for row in rows:
            etree.SubElement(
                element,
                qualified("Agency"),
                {
                    "code": str(row[CODE]),
                    "rank": str(int(row[RANK])),
                    "infrastructure": score_text(row["infrastructure"]),
                    "humanResources": score_text(row["human_resources"]),
                    "applications": score_text(row["applications"]),
                    "policy": score_text(row["policy"]),
                    "total": score_text(row[TOTAL]),
                },
            )


def ict_json_body(report: pd.DataFrame) -> dict[str, Any]:
    """The `ict_ranking` body. JSON has no fixed-point numbers: a 3-decimal score is written as the
    shortest float that reads back to it (465.0, 464.23), which the central parses as a Decimal."""
    return {
        "blocks": [
            {
                "id": block,
                "agencies": [
                    {
                        "code": str(row[CODE]),
                        "rank": int(row[RANK]),
                        **{name: float(score_text(row[name])) for name in (*COMPONENTS, TOTAL)},
                    }
                    for row in rows
                ],
            }
            for block, rows in _report_blocks(report)
        ]
    }
