"""EGOV_MATURITY: level counts and shares against Gia Lai's published 2019 figures; XML and JSON rendering."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pytest
from lxml import etree

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import parse_period
from baocao.core.report import Completeness
from baocao.transforms import render
from baocao.transforms.egov_maturity import (
    AGENCY_COLUMNS,
    INPUT_COLUMNS,
    SUMMARY_COLUMNS,
    EgovMaturityReport,
    assemble_egov_maturity,
    egov_json_body,
    egov_xml_body,
)
from baocao.transforms.ict_ranking import ScoreInputError

YEAR_2019 = parse_period("2019", "CALENDAR")
D = Decimal
# Readiness scores are made up (one per level); only the levels are published.
SCORE_AT = {"I": "41.5", "II": "55.25", "III": "70", "IV": "85.125", "UNRANKED": "20"}


def block_scores(block: str, code_of: str, name_of: str, levels: dict[str, int]) -> list[tuple[object, ...]]:
    """Agencies of one block, numbered 1.., each at its level with that level's score."""
    rows: list[tuple[object, ...]] = []
    for level, count in levels.items():
        for _ in range(count):
            number = len(rows) + 1
            rows.append((block, code_of.format(number), name_of.format(number), D(SCORE_AT[level]), level))
    return rows


def gia_lai_2019() -> pd.DataFrame:
    """Gia Lai, 2019 (DOMAIN.md): 20 departments and 17 districts; codes and names are illustrative."""
    districts = block_scores("DISTRICT", "000.{:02d}.00.H99", "UBND huyện {}", {"IV": 1, "UNRANKED": 16})
    departments = block_scores(
        "DEPARTMENT", "000.00.{:02d}.H99", "Sở {}", {"I": 2, "II": 8, "III": 5, "IV": 2, "UNRANKED": 3}
    )
    # Districts first: the report orders the blocks itself.
    return pd.DataFrame(districts + departments, columns=list(INPUT_COLUMNS))


def _summary(report: EgovMaturityReport) -> list[tuple[str, str, int, str]]:
    return [(r.block, r.level, r.count, str(r.share)) for r in report.summary.itertuples()]


def test_gia_lai_2019_counts_and_shares() -> None:
    report = assemble_egov_maturity(gia_lai_2019(), YEAR_2019)
    assert list(report.agencies.columns) == list(AGENCY_COLUMNS)
    assert list(report.summary.columns) == list(SUMMARY_COLUMNS)
    assert _summary(report) == [
        ("DEPARTMENT", "I", 2, "10.00"),
        ("DEPARTMENT", "II", 8, "40.00"),
        ("DEPARTMENT", "III", 5, "25.00"),
        ("DEPARTMENT", "IV", 2, "10.00"),
        ("DEPARTMENT", "UNRANKED", 3, "15.00"),
        ("DISTRICT", "I", 0, "0.00"),
        ("DISTRICT", "II", 0, "0.00"),
        ("DISTRICT", "III", 0, "0.00"),
        ("DISTRICT", "IV", 1, "5.88"),
        ("DISTRICT", "UNRANKED", 16, "94.12"),
    ]
    agencies = report.agencies
    assert list(agencies["block"]) == ["DEPARTMENT"] * 20 + ["DISTRICT"] * 17
    assert list(agencies["code"][:2]) == ["000.00.01.H99", "000.00.02.H99"]
    assert agencies["readiness_score"][0] == D("41.500")


def test_shares_round_half_up() -> None:
    # 1/32 = 3.125 % and 31/32 = 96.875 %: half-up gives 3.13 and 96.88 (half-even would give 3.12).
    frame = pd.DataFrame(
        block_scores("COMMUNE", "000.{:02d}.01.H99", "Xã {}", {"I": 1, "UNRANKED": 31}), columns=list(INPUT_COLUMNS)
    )
    report = assemble_egov_maturity(frame, parse_period("2026", "CALENDAR"))
    shares = {r.level: str(r.share) for r in report.summary.itertuples()}
    assert shares == {"I": "3.13", "II": "0.00", "III": "0.00", "IV": "0.00", "UNRANKED": "96.88"}


def test_a_district_row_after_the_districts_were_abolished_is_refused() -> None:
    with pytest.raises(ScoreInputError, match=r"EGOV_MATURITY 2026: agency 000\.01\.00\.H99.*in block DISTRICT"):
        assemble_egov_maturity(gia_lai_2019(), parse_period("2026", "CALENDAR"))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("level", "V", r"agency 000\.01\.00\.H99: unknown maturity level 'V'"),
        ("readiness_score", None, r"agency 000\.01\.00\.H99, readiness_score: score missing"),
        ("readiness_score", D("1.0005"), r"score 1\.0005 has more than 3 decimals"),
    ],
)
def test_a_sheet_that_breaks_the_contract_is_refused_with_the_agency_named(
    column: str, value: object, message: str
) -> None:
    frame = gia_lai_2019().astype(object)
    frame.loc[0, column] = value
    with pytest.raises(ScoreInputError, match=message):
        assemble_egov_maturity(frame, YEAR_2019)


# ---------------------------------------------------------------- rendering


def _envelope() -> render.Envelope:
    return render.Envelope(
        submission_id="7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        report_type="EGOV_MATURITY",
        sender_code="000.00.00.H99",
        sender_name="UBND tỉnh Gia Lai",
        receiver_code="000.00.00.G22",
        receiver_name="Bộ Khoa học và Công nghệ",
        period=YEAR_2019,
        version=1,
        generated_at=datetime(2020, 1, 20, 9, 30, tzinfo=LOCAL_TIMEZONE),
        producer_name="baocao",
        producer_version="test",
        completeness=Completeness(37, 37, ()),
    )


def test_xml_is_valid_and_carries_levels_counts_and_shares() -> None:
    report = assemble_egov_maturity(gia_lai_2019(), YEAR_2019)
    payload = render.render_xml(_envelope(), "EgovMaturity", lambda body: egov_xml_body(body, report))
    document = etree.fromstring(payload)
    ns = {"s": render.NAMESPACE}
    assert document.findtext("s:Header/s:ReportType", namespaces=ns) == "EGOV_MATURITY"
    blocks = document.findall("s:Body/s:EgovMaturity/s:Block", ns)
    assert [b.get("id") for b in blocks] == ["DEPARTMENT", "DISTRICT"]
    assert len(blocks[0].findall("s:Agency", ns)) == 20 and len(blocks[1].findall("s:Agency", ns)) == 17
    first = blocks[0].find("s:Agency", ns)
    assert first is not None and dict(first.attrib) == {
        "code": "000.00.01.H99",
        "readinessScore": "41.500",
        "level": "I",
    }
    assert [(s.get("level"), s.get("count"), s.get("share")) for s in blocks[1].findall("s:Summary", ns)] == [
        ("I", "0", "0.00"),
        ("II", "0", "0.00"),
        ("III", "0", "0.00"),
        ("IV", "1", "5.88"),
        ("UNRANKED", "16", "94.12"),
    ]
    assert [s.get("share") for s in blocks[0].findall("s:Summary", ns)] == ["10.00", "40.00", "25.00", "10.00", "15.00"]


def test_json_is_valid_and_carries_levels_counts_and_shares() -> None:
    report = assemble_egov_maturity(gia_lai_2019(), YEAR_2019)
    document = json.loads(render.render_json(_envelope(), "egov_maturity", egov_json_body(report)))
    assert document["header"]["period"]["id"] == "2019" and document["header"]["period"]["regime"] == "CALENDAR"
    blocks = document["body"]["egov_maturity"]["blocks"]
    assert [b["id"] for b in blocks] == ["DEPARTMENT", "DISTRICT"]
    assert blocks[0]["agencies"][0] == {"code": "000.00.01.H99", "readiness_score": 41.5, "level": "I"}
    assert blocks[0]["summary"] == [
        {"level": "I", "count": 2, "share": 10.0},
        {"level": "II", "count": 8, "share": 40.0},
        {"level": "III", "count": 5, "share": 25.0},
        {"level": "IV", "count": 2, "share": 10.0},
        {"level": "UNRANKED", "count": 3, "share": 15.0},
    ]
    assert [(s["level"], s["count"], s["share"]) for s in blocks[1]["summary"]][3:] == [
        ("IV", 1, 5.88),
        ("UNRANKED", 16, 94.12),
    ]
