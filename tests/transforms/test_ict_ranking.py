"""ICT_RANKING: totals and dense ranks against Lâm Đồng's published 2019 ranking; XML and JSON rendering."""

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
from baocao.transforms.ict_ranking import (
    INPUT_COLUMNS,
    REPORT_COLUMNS,
    ScoreInputError,
    assemble_ict_ranking,
    ict_json_body,
    ict_xml_body,
)

YEAR_2019 = parse_period("2019", "CALENDAR")
D = Decimal


def scores(*rows: tuple[str, str, str, str, str, str, str]) -> pd.DataFrame:
    """A score frame as the reader produces it; scores given as text, turned into Decimals."""
    frame = pd.DataFrame(list(rows), columns=list(INPUT_COLUMNS))
    for name in INPUT_COLUMNS[3:]:
        frame[name] = [D(value) for value in frame[name]]
    return frame


# Lâm Đồng, 2019 (DOMAIN.md): the totals and ranks are published; agency codes are illustrative, and
# the components of Sở Tài chính, Sở GD&ĐT and TP. Bảo Lộc are made up to add up to their totals.
LAM_DONG_2019 = scores(
    ("DISTRICT", "000.01.00.H99", "UBND TP. Bảo Lộc", "45", "40", "290.5", "55"),
    ("DEPARTMENT", "000.00.12.H99", "Sở Giáo dục và Đào tạo", "60", "55", "277", "70"),
    ("DEPARTMENT", "000.00.10.H99", "Sở Thông tin và Truyền thông", "60", "60", "275", "70"),
    ("DISTRICT", "000.02.00.H99", "UBND TP. Đà Lạt", "50", "40", "302.531", "60"),
    ("DEPARTMENT", "000.00.11.H99", "Sở Tài chính", "58.23", "60", "276", "70"),
)


def _by_code(report: pd.DataFrame) -> dict[str, tuple[str, int, Decimal]]:
    return {r.code: (r.block, r.rank, r.total) for r in report.itertuples()}


def test_lam_dong_2019_totals_and_ranks() -> None:
    report = assemble_ict_ranking(LAM_DONG_2019, YEAR_2019)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert [(r.block, r.rank, r.name, str(r.total)) for r in report.itertuples()] == [
        ("DEPARTMENT", 1, "Sở Thông tin và Truyền thông", "465.000"),
        ("DEPARTMENT", 2, "Sở Tài chính", "464.230"),
        ("DEPARTMENT", 3, "Sở Giáo dục và Đào tạo", "462.000"),
        ("DISTRICT", 1, "UBND TP. Đà Lạt", "452.531"),
        ("DISTRICT", 2, "UBND TP. Bảo Lộc", "430.500"),
    ]
    assert all(isinstance(value, Decimal) for value in report["total"])


def test_equal_totals_share_a_rank_and_the_next_total_gets_the_following_integer() -> None:
    report = assemble_ict_ranking(
        scores(
            ("COMMUNE", "000.00.03.H99", "Xã C", "10", "10", "100", "10"),  # 130
            ("COMMUNE", "000.00.01.H99", "Xã A", "20", "10", "100.5", "10"),  # 140.5
            ("COMMUNE", "000.00.02.H99", "Xã B", "10", "20", "100", "10.5"),  # 140.5
            ("COMMUNE", "000.00.04.H99", "Xã D", "1", "1", "1", "1"),  # 4
        ),
        YEAR_2019,
    )
    assert [(r.code, r.rank) for r in report.itertuples()] == [
        ("000.00.01.H99", 1),
        ("000.00.02.H99", 1),
        ("000.00.03.H99", 2),
        ("000.00.04.H99", 3),
    ]


def test_ranks_are_per_block_and_blocks_follow_report_order() -> None:
    report = assemble_ict_ranking(
        scores(
            ("COMMUNE", "000.00.03.H99", "Xã C", "90", "90", "300", "90"),
            ("DEPARTMENT", "000.00.01.H99", "Sở A", "1", "1", "1", "1"),
        ),
        YEAR_2019,
    )
    assert [(r.block, r.rank) for r in report.itertuples()] == [("DEPARTMENT", 1), ("COMMUNE", 1)]


def test_a_district_row_after_the_districts_were_abolished_is_refused() -> None:
    with pytest.raises(
        ScoreInputError, match=r"agency 000\.01\.00\.H99, 000\.02\.00\.H99 in block DISTRICT.*abolished on 2025-07-01"
    ):
        assemble_ict_ranking(LAM_DONG_2019, parse_period("2025-07", "CALENDAR"))
    # A period starting before 2025-07-01 (here the whole calendar year 2025) still has districts.
    assert "DISTRICT" in set(assemble_ict_ranking(LAM_DONG_2019, parse_period("2025", "CALENDAR"))["block"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"applications": D("302.5314")}, r"000\.02\.00\.H99, applications: score 302\.5314 has more than 3 decimals"),
        ({"policy": None}, r"000\.02\.00\.H99, policy: score missing"),
        ({"policy": "n/a"}, r"000\.02\.00\.H99, policy: score 'n/a' is not a number"),
        ({"block": "HUYỆN"}, r"unknown block for agency 000\.02\.00\.H99 \('HUYỆN'\)"),
    ],
)
def test_a_score_sheet_that_breaks_the_contract_is_refused_with_the_agency_named(
    change: dict[str, object], message: str
) -> None:
    frame = LAM_DONG_2019.astype(object)
    for column, value in change.items():
        frame.loc[3, column] = value
    with pytest.raises(ScoreInputError, match=message):
        assemble_ict_ranking(frame, YEAR_2019)


def test_missing_columns_and_an_empty_sheet_are_refused() -> None:
    with pytest.raises(ScoreInputError, match="lacks column.*policy"):
        assemble_ict_ranking(LAM_DONG_2019.drop(columns=["policy"]), YEAR_2019)
    with pytest.raises(ScoreInputError, match="no agency scores"):
        assemble_ict_ranking(LAM_DONG_2019.iloc[0:0], YEAR_2019)


def test_text_integer_and_float_scores_are_read_exactly() -> None:
    frame = LAM_DONG_2019.astype(object)
    frame.loc[4, ["infrastructure", "human_resources", "applications", "policy"]] = ["58.23", 60, 276.0, D("70")]
    report = assemble_ict_ranking(frame, YEAR_2019)
    assert _by_code(report)["000.00.11.H99"] == ("DEPARTMENT", 2, D("464.230"))


# ---------------------------------------------------------------- rendering


def _envelope() -> render.Envelope:
    return render.Envelope(
        submission_id="5d0c8a1e-2b7f-4c1a-9e3d-7f6a5b4c3d2e",
        report_type="ICT_RANKING",
        sender_code="000.00.00.H99",
        sender_name="UBND tỉnh Lâm Đồng",
        receiver_code="000.00.00.G22",
        receiver_name="Bộ Khoa học và Công nghệ",
        period=YEAR_2019,
        version=1,
        generated_at=datetime(2020, 1, 20, 9, 30, tzinfo=LOCAL_TIMEZONE),
        producer_name="baocao",
        producer_version="test",
        completeness=Completeness(5, 5, ()),
    )


def test_xml_is_valid_and_carries_scores_with_three_decimals() -> None:
    report = assemble_ict_ranking(LAM_DONG_2019, YEAR_2019)
    payload = render.render_xml(_envelope(), "IctRanking", lambda body: ict_xml_body(body, report))
    document = etree.fromstring(payload)
    ns = {"s": render.NAMESPACE}
    period = document.find("s:Header/s:Period", ns)
    assert period is not None and dict(period.attrib) == {
        "type": "YEAR",
        "id": "2019",
        "regime": "CALENDAR",
        "start": "2019-01-01",
        "end": "2019-12-31",
    }
    blocks = document.findall("s:Body/s:IctRanking/s:Block", ns)
    assert [b.get("id") for b in blocks] == ["DEPARTMENT", "DISTRICT"]
    first = blocks[0].find("s:Agency", ns)
    assert first is not None and dict(first.attrib) == {
        "code": "000.00.10.H99",
        "rank": "1",
        "infrastructure": "60.000",
        "humanResources": "60.000",
        "applications": "275.000",
        "policy": "70.000",
        "total": "465.000",
    }
    assert [(a.get("total"), a.get("rank")) for a in blocks[0].findall("s:Agency", ns)] == [
        ("465.000", "1"),
        ("464.230", "2"),
        ("462.000", "3"),
    ]
    da_lat = blocks[1].find("s:Agency", ns)
    assert da_lat is not None and (da_lat.get("applications"), da_lat.get("total"), da_lat.get("rank")) == (
        "302.531",
        "452.531",
        "1",
    )


def test_json_is_valid_and_carries_the_scores() -> None:
    report = assemble_ict_ranking(LAM_DONG_2019, YEAR_2019)
    document = json.loads(render.render_json(_envelope(), "ict_ranking", ict_json_body(report)))
    assert document["header"]["report_type"] == "ICT_RANKING"
    assert document["header"]["period"] == {
        "type": "YEAR",
        "id": "2019",
        "regime": "CALENDAR",
        "start": "2019-01-01",
        "end": "2019-12-31",
    }
    blocks = document["body"]["ict_ranking"]["blocks"]
    assert [b["id"] for b in blocks] == ["DEPARTMENT", "DISTRICT"]
    assert blocks[0]["agencies"][0] == {
        "code": "000.00.10.H99",
        "rank": 1,
        "infrastructure": 60.0,
        "human_resources": 60.0,
        "applications": 275.0,
        "policy": 70.0,
        "total": 465.0,
    }
    assert [(a["total"], a["rank"]) for a in blocks[0]["agencies"]] == [(465.0, 1), (464.23, 2), (462.0, 3)]
    # Read back as the central does (exact decimals), the total is the published one.
    central = json.loads(render.render_json(_envelope(), "ict_ranking", ict_json_body(report)), parse_float=Decimal)
    assert central["body"]["ict_ranking"]["blocks"][1]["agencies"][0]["total"] == D("452.531")


def test_a_negative_score_never_leaves_the_province() -> None:
    frame = LAM_DONG_2019.copy()
    frame.loc[0, "policy"] = D("-1")
    report = assemble_ict_ranking(frame, YEAR_2019)
    with pytest.raises(render.SchemaError, match="policy"):
        render.render_xml(_envelope(), "IctRanking", lambda body: ict_xml_body(body, report))
    with pytest.raises(render.SchemaError, match="policy"):
        render.render_json(_envelope(), "ict_ranking", ict_json_body(report))
