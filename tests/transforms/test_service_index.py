"""SERVICE_INDEX against hand-computed metrics (SQLite and PostgreSQL), the ruleset file, and rendering.

Period 2026-Q3 (CALENDAR) runs from 2026-07-01 00:00 to 2026-09-30 24:00 local time. Every expected
numerator, denominator and score below is worked out by hand in the comments beside the fixture.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from lxml import etree

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import ConfigurationError, ContractError
from baocao.core.layouts.service_index import REPORT_COLUMNS, Kind, Line, ZeroDenominator
from baocao.core.periods import Period, parse_period
from baocao.core.report import Completeness
from baocao.simulators.central.document import Style, canonical_document, parse_body, validate_schema
from baocao.simulators.central.model import build_submission
from baocao.simulators.central.rules import check_business_rules
from baocao.storage import warehouse
from baocao.transforms import render
from baocao.transforms.service_index import (
    MEASURES,
    MetricRule,
    RulesetError,
    assemble_service_index,
    input_columns,
    load_ruleset,
    metric_score,
    ruleset_for,
    service_index_json_body,
    service_index_query,
    service_index_xml_body,
    shipped_rulesets,
)
from tests.catalogue_fixture import reset_catalogue

Q3 = parse_period("2026-Q3", "CALENDAR")
PROVINCE = "000.00.00.H99"
DEPARTMENT = "000.00.01.H99"  # full catalogue, dossiers on every edge
LEGACY = "000.01.01.H99"  # dossiers from a legacy database: no electronic-result or rating column
XML_CATALOGUE = "000.01.02.H99"  # catalogue from the XML export (no publication flags), no dossiers
LATE = "000.01.04.H99"  # only a dossier received at 24:00 of the end date: not reported
RULESET = ruleset_for(Q3)
RULESET_FILE = Path(__file__).resolve().parents[2] / "transforms" / "rulesets" / "service_index" / "766-v1.yaml"


def procedure(
    code: str,
    agency: str,
    online_type: str,
    fee: bool | None,
    payable: bool | None,
    published: bool | None = None,
    updated: bool | None = None,
    complete: bool | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "agency_code": agency,
        "name": f"Thủ tục {code}",
        "field_code": "LV-01",
        "online_type": online_type,
        "fee_required": fee,
        "online_payment": payable,
        "published_on_time": published,
        "publication_updated_on_time": updated,
        "content_complete": complete,
        "source": "test",
        "batch_id": "hand",
    }


def dossier(
    code: str,
    agency: str,
    procedure_code: str,
    channel: str,
    received: str,
    *,
    status: str = "PROCESSING",
    due: str | None = None,
    finished: str | None = None,
    fee: bool | None = False,
    paid: bool | None = False,
    digitized: bool | None = False,
    electronic: bool | None = False,
    rating: int | None = None,
    deleted: bool = False,
) -> dict[str, Any]:
    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    return {
        "code": code,
        "agency_code": agency,
        "procedure_code": procedure_code,
        "field_code": "LV-01",
        "field_name": "Lĩnh vực",
        "channel": channel,
        "status": status,
        "received_at": moment(received),
        "due_at": moment(due),
        "finished_at": moment(finished),
        "fee_required": fee,
        "paid_online": paid,
        "digitized": digitized,
        "result_electronic": electronic,
        "rating": rating,
        "updated_at": datetime(2026, 10, 5, 4, 0),
        "deleted": deleted,
        "source": "test",
        "batch_id": "hand",
    }


PROCEDURES = [
    #         code        agency        type       fee    payable published updated complete
    procedure("1.000001", DEPARTMENT, "FULL", True, True, True, True, True),  # P1
    procedure("1.000002", DEPARTMENT, "FULL", False, None, True, False, True),  # P2
    procedure("1.000003", DEPARTMENT, "PARTIAL", True, False, False, True, None),  # P3: completeness unknown
    procedure("1.000004", DEPARTMENT, "NONE", True, None, True, True, True),  # P4: payability unknown
    procedure("1.000005", DEPARTMENT, "PARTIAL", False, False, True, True, False),  # P5
    procedure("2.000001", XML_CATALOGUE, "FULL", True, True),  # the XML export has no publication flags
    procedure("2.000002", XML_CATALOGUE, "NONE", False, None),
]

DOSSIERS = [
    # DEPARTMENT. Received in Q3: a01 a02 a03 a04 a05 a06 a11 (7). Finished in Q3: a01 a02 a03 a04 a07 a11 (6).
    dossier(
        "a01",
        DEPARTMENT,
        "1.000001",
        "ONLINE",
        "2026-07-01 00:00",  # first instant of the period
        status="RESOLVED",
        due="2026-07-10 17:00",
        finished="2026-07-05 10:00",  # early
        fee=True,
        paid=True,
        digitized=True,
        electronic=True,
        rating=5,
    ),  # fmt: skip
    dossier(
        "a02",
        DEPARTMENT,
        "1.000001",
        "ONLINE",
        "2026-07-10 08:00",
        status="RESOLVED",
        due="2026-07-20 17:00",
        finished="2026-07-20 16:00",  # on time: due day, before due_at
        fee=True,
        paid=False,
        digitized=True,
        electronic=False,
        rating=4,
    ),  # fmt: skip
    dossier(
        "a03",
        DEPARTMENT,
        "1.000002",
        "DIRECT",
        "2026-08-01 08:00",
        status="RESOLVED",
        due="2026-08-15 17:00",
        finished="2026-08-15 18:00",  # late: a later hour of the due day
        digitized=False,
        electronic=True,
        rating=2,
    ),  # fmt: skip
    dossier(
        "a04",
        DEPARTMENT,
        "1.000003",
        "POSTAL",
        "2026-08-05 08:00",
        status="RETURNED",
        due="2026-08-20 17:00",
        finished="2026-08-06 08:00",  # returned: on time, no result
        fee=True,
        paid=False,
        electronic=None,
        rating=3,
    ),  # fmt: skip
    dossier(
        "a05",
        DEPARTMENT,
        "1.000003",
        "ONLINE",
        "2026-09-30 23:59:59",  # last second: P3 used online
        due="2026-10-10 17:00",
        fee=True,
        paid=True,
        digitized=True,
    ),  # fmt: skip
    dossier("a06", DEPARTMENT, "1.000004", "DIRECT", "2026-09-01 08:00", fee=True, paid=None, digitized=None),
    dossier(
        "a07",
        DEPARTMENT,
        "1.000005",
        "ONLINE",
        "2026-06-30 23:59:59",  # carried over: finished in Q3 only
        status="RESOLVED",
        due="2026-07-03 17:00",
        finished="2026-07-02 09:00",  # early
        digitized=True,
        electronic=True,
        rating=5,
    ),  # fmt: skip
    dossier("a08", DEPARTMENT, "1.000001", "ONLINE", "2026-09-15 08:00", status="CANCELLED"),  # nowhere
    dossier("a09", DEPARTMENT, "1.000002", "ONLINE", "2026-09-16 08:00", deleted=True),  # nowhere
    dossier("a10", DEPARTMENT, "1.000002", "ONLINE", "2026-10-01 00:00"),  # 24:00 of the end date: nowhere
    dossier(
        "a11",
        DEPARTMENT,
        "9.999999",
        "DIRECT",
        "2026-07-15 08:00",  # not in the catalogue: counts as a dossier
        status="WITHDRAWN",
        finished="2026-07-16 08:00",  # withdrawn: on time
    ),  # fmt: skip
    dossier(
        "a12",
        DEPARTMENT,
        "1.000001",
        "DIRECT",
        "2026-05-01 08:00",
        status="RESOLVED",
        due="2026-07-01 17:00",
        finished="2026-06-30 23:00",  # finished before Q3: nowhere
    ),  # fmt: skip
    # LEGACY: the `hoso` table has no result_electronic or rating column.
    dossier(
        "b01",
        LEGACY,
        "1.000001",
        "DIRECT",
        "2026-07-05 08:00",
        status="RESOLVED",
        finished="2026-07-06 08:00",  # no due date: on time
        fee=True,
        paid=False,
        digitized=True,
        electronic=None,
    ),  # fmt: skip
    dossier(
        "b02",
        LEGACY,
        "1.000001",
        "ONLINE",
        "2026-07-06 08:00",
        status="RESOLVED",
        due="2026-07-10 17:00",
        finished="2026-07-20 08:00",  # late
        fee=False,
        paid=None,
        digitized=False,
        electronic=None,
    ),  # fmt: skip
    dossier("e01", LATE, "1.000001", "ONLINE", "2026-10-01 00:00"),
]

NOT_CONNECTED = None  # a metric reported without numerator and denominator, score 0
# metric → (numerator, denominator, score), or NOT_CONNECTED
EXPECTED_DEPARTMENT: dict[str, tuple[int, int, str] | None] = {
    "PUBLISHED_ON_TIME": (4, 5, "4.800"),  # P1 P2 P4 P5 of 5: 6 × 4/5
    "PUBLICATION_UPDATED_ON_TIME": (4, 5, "3.200"),  # P1 P3 P4 P5: 4 × 4/5
    "CONTENT_COMPLETE": (3, 4, "1.500"),  # P3 unknown; P1 P2 P4 of 4: 2 × 3/4
    "NATIONAL_PORTAL_SYNC": NOT_CONNECTED,
    "RESOLVED_ON_TIME": (5, 6, "16.667"),  # a01 a07 early, a02 on time, a04 returned, a11 withdrawn; a03 late
    "OFFERED_ONLINE": (4, 5, "2.000"),  # P1 P2 P3 P5: min(2, 2 × 0.8 / 0.8)
    "ONLINE_SERVICES_USED": (2, 4, "2.000"),  # P1 (a01 a02), P3 (a05); P2 (a09 deleted, a10 late), P5 (a07 before)
    "ONLINE_DOSSIERS": (3, 7, "5.143"),  # a01 a02 a05 of 7: min(6, 6 × 3/7 / 0.5) = 36/7
    "DOSSIERS_PAID_ONLINE": (2, 4, "3.000"),  # fee: a01 a02 a04 a05 known (a06 unknown), a01 a05 paid: 6 × 1/2
    "FEE_PROCEDURES_PAYABLE_ONLINE": (1, 2, "1.250"),  # fee: P1 P3 known (P4 unknown), P1: min(2, 2.5 × 1/2)
    "FEE_PROCEDURES_PAID_ONLINE": (2, 3, "1.667"),  # fee P1 P3 P4; paid online in Q3: P1 (a01), P3 (a05)
    "RECEPTION_SATISFACTION": (3, 5, "4.000"),  # rated a01 5, a02 4, a03 2, a04 3, a07 5 (a11 unrated): 6 × 0.6 / 0.9
    "PETITIONS_ANSWERED_ON_TIME": NOT_CONNECTED,
    "PETITION_SATISFACTION": NOT_CONNECTED,
    "RESULT_ELECTRONIC": (3, 4, "4.500"),  # RESOLVED in Q3: a01 a02 a03 a07; a01 a03 a07 electronic
    "PAPERS_DIGITIZED": (3, 6, "2.000"),  # received: a01 a02 a05 digitised, a03 a04 a11 not, a06 unknown
    "CERTIFIED_COPIES_ELECTRONIC": NOT_CONNECTED,
    "DIGITIZED_DATA_REUSED": NOT_CONNECTED,
    "PERSONAL_STORAGE_SYNC": NOT_CONNECTED,
    "POPULATION_DATA_DOSSIERS": NOT_CONNECTED,
    "POPULATION_DATA_PROCEDURES": NOT_CONNECTED,
}
EXPECTED_LEGACY: dict[str, tuple[int, int, str] | None] = {
    **dict.fromkeys(EXPECTED_DEPARTMENT, NOT_CONNECTED),
    # No catalogue entries: connected sources, zero denominators, 0 points.
    "PUBLISHED_ON_TIME": (0, 0, "0.000"),
    "PUBLICATION_UPDATED_ON_TIME": (0, 0, "0.000"),
    "CONTENT_COMPLETE": (0, 0, "0.000"),
    "OFFERED_ONLINE": (0, 0, "0.000"),
    "ONLINE_SERVICES_USED": (0, 0, "0.000"),
    "FEE_PROCEDURES_PAYABLE_ONLINE": (0, 0, "0.000"),
    "FEE_PROCEDURES_PAID_ONLINE": (0, 0, "0.000"),
    "RESOLVED_ON_TIME": (1, 2, "10.000"),  # b01 (no due date) on time, b02 late
    "ONLINE_DOSSIERS": (1, 2, "6.000"),  # min(6, 6 × 1/2 / 0.5)
    "DOSSIERS_PAID_ONLINE": (0, 1, "0.000"),  # b01 has a fee, not paid online
    "PAPERS_DIGITIZED": (1, 2, "2.000"),
    # RECEPTION_SATISFACTION and RESULT_ELECTRONIC: every finished dossier has the value unknown.
}
EXPECTED_XML_CATALOGUE: dict[str, tuple[int, int, str] | None] = {
    **dict.fromkeys(EXPECTED_DEPARTMENT, NOT_CONNECTED),  # publication flags unknown for both procedures
    "RESOLVED_ON_TIME": (0, 0, "0.000"),
    "OFFERED_ONLINE": (1, 2, "1.250"),  # 2 × 1/2 / 0.8
    "ONLINE_SERVICES_USED": (0, 1, "0.000"),
    "ONLINE_DOSSIERS": (0, 0, "0.000"),
    "DOSSIERS_PAID_ONLINE": (0, 0, "0.000"),
    "FEE_PROCEDURES_PAYABLE_ONLINE": (1, 1, "2.000"),  # min(2, 2.5)
    "FEE_PROCEDURES_PAID_ONLINE": (0, 1, "0.000"),
    "RECEPTION_SATISFACTION": (0, 0, "0.000"),
    "RESULT_ELECTRONIC": (0, 0, "0.000"),
    "PAPERS_DIGITIZED": (0, 0, "0.000"),
}
# The province: the agencies' counts summed, then scored (never an average of scores).
EXPECTED_PROVINCE: dict[str, tuple[int, int, str] | None] = {
    **dict.fromkeys(EXPECTED_DEPARTMENT, NOT_CONNECTED),
    "PUBLISHED_ON_TIME": (4, 5, "4.800"),
    "PUBLICATION_UPDATED_ON_TIME": (4, 5, "3.200"),
    "CONTENT_COMPLETE": (3, 4, "1.500"),
    "RESOLVED_ON_TIME": (6, 8, "15.000"),
    "OFFERED_ONLINE": (5, 7, "1.786"),  # 2 × 5/7 / 0.8 = 1.78571…
    "ONLINE_SERVICES_USED": (2, 5, "1.600"),
    "ONLINE_DOSSIERS": (4, 9, "5.333"),  # 6 × 4/9 / 0.5 = 5.3333…
    "DOSSIERS_PAID_ONLINE": (2, 5, "2.400"),
    "FEE_PROCEDURES_PAYABLE_ONLINE": (2, 3, "1.667"),  # 2 × 2/3 / 0.8 = 1.6666…
    "FEE_PROCEDURES_PAID_ONLINE": (2, 4, "1.250"),
    "RECEPTION_SATISFACTION": (3, 5, "4.000"),
    "RESULT_ELECTRONIC": (3, 4, "4.500"),
    "PAPERS_DIGITIZED": (4, 8, "2.000"),
}
# group → score, and the total, per entity
EXPECTED_GROUPS = {
    DEPARTMENT: {
        "TRANSPARENCY": "9.500",
        "PROGRESS": "16.667",
        "ONLINE_SERVICE": "9.143",
        "ONLINE_PAYMENT": "5.917",
        "SATISFACTION": "4.000",
        "DIGITIZATION": "6.500",
        None: "51.727",
    },
    LEGACY: {
        "TRANSPARENCY": "0.000",
        "PROGRESS": "10.000",
        "ONLINE_SERVICE": "6.000",
        "ONLINE_PAYMENT": "0.000",
        "SATISFACTION": "0.000",
        "DIGITIZATION": "2.000",
        None: "18.000",
    },
    XML_CATALOGUE: {
        "TRANSPARENCY": "0.000",
        "PROGRESS": "0.000",
        "ONLINE_SERVICE": "1.250",
        "ONLINE_PAYMENT": "2.000",
        "SATISFACTION": "0.000",
        "DIGITIZATION": "0.000",
        None: "3.250",
    },
    PROVINCE: {
        "TRANSPARENCY": "9.500",
        "PROGRESS": "15.000",
        "ONLINE_SERVICE": "8.719",
        "ONLINE_PAYMENT": "5.317",
        "SATISFACTION": "4.000",
        "DIGITIZATION": "6.500",
        None: "49.036",
    },
}
EXPECTED_METRICS = {
    DEPARTMENT: EXPECTED_DEPARTMENT,
    LEGACY: EXPECTED_LEGACY,
    XML_CATALOGUE: EXPECTED_XML_CATALOGUE,
    PROVINCE: EXPECTED_PROVINCE,
}


def _hand_rows() -> list[tuple[Any, ...]]:
    """Per agency: `input_columns(RULESET)` values, from the counts worked out above."""
    counts = {
        # measure: (DEPARTMENT, LEGACY, XML_CATALOGUE) as (numerator, denominator, unknown)
        "procedures_published_on_time": ((4, 5, 0), (0, 0, 0), (0, 0, 2)),
        "procedures_publication_updated_on_time": ((4, 5, 0), (0, 0, 0), (0, 0, 2)),
        "procedures_content_complete": ((3, 4, 1), (0, 0, 0), (0, 0, 2)),
        "dossiers_resolved_on_time": ((5, 6, 0), (1, 2, 0), (0, 0, 0)),
        "procedures_offered_online": ((4, 5, 0), (0, 0, 0), (1, 2, 0)),
        "online_services_with_online_dossiers": ((2, 4, 0), (0, 0, 0), (0, 1, 0)),
        "dossiers_received_online": ((3, 7, 0), (1, 2, 0), (0, 0, 0)),
        "fee_dossiers_paid_online": ((2, 4, 1), (0, 1, 0), (0, 0, 0)),
        "fee_procedures_payable_online": ((1, 2, 1), (0, 0, 0), (1, 1, 0)),
        "fee_procedures_with_online_payments": ((2, 3, 0), (0, 0, 0), (0, 1, 0)),
        "finished_dossiers_rated_satisfied": ((3, 5, 1), (0, 0, 2), (0, 0, 0)),
        "resolved_dossiers_result_electronic": ((3, 4, 0), (0, 0, 2), (0, 0, 0)),
        "dossiers_digitized": ((3, 6, 1), (1, 2, 0), (0, 0, 0)),
    }
    assert tuple(counts) == RULESET.connected_measures()
    rows = []
    for index, (agency, in_period) in enumerate(((DEPARTMENT, 8), (LEGACY, 2), (XML_CATALOGUE, 0))):
        rows.append((agency, in_period, *[value for triple in counts.values() for value in triple[index]]))
    return rows


HAND_ROWS = _hand_rows()


def grouped(url: str, period: Period = Q3) -> pd.DataFrame:
    engine = warehouse.connect(url)
    reset_catalogue(engine, PROCEDURES)
    with engine.begin() as connection:
        connection.execute(sa.delete(tables.dossiers))
        connection.execute(sa.insert(tables.dossiers), DOSSIERS)
        rows = connection.execute(service_index_query(period, RULESET)).mappings().all()
    engine.dispose()
    return pd.DataFrame([dict(row) for row in rows])


def metrics_of(report: pd.DataFrame, code: str) -> dict[str, tuple[int, int, str] | None]:
    lines = report[(report["agency"] == code) & (report["line"] == Line.METRIC)].to_dict("records")
    return {
        line["metric"]: None
        if line["numerator"] is None
        else (line["numerator"], line["denominator"], str(line["score"]))
        for line in lines
    }


def scores_of(report: pd.DataFrame, code: str) -> dict[str | None, str]:
    lines = report[(report["agency"] == code) & (report["line"] != Line.METRIC)].to_dict("records")
    return {line["group"]: str(line["score"]) for line in lines}


def hand_inputs() -> pd.DataFrame:
    """The rows the query must produce for Q3 (also the suite tests' good fixture), from a SQLite run."""
    return pd.DataFrame(HAND_ROWS, columns=list(input_columns(RULESET)))


def test_metrics_groups_and_totals_match_hand_computed_values(warehouse_url: str) -> None:
    rows = grouped(warehouse_url)
    assert list(rows["agency"]) == [DEPARTMENT, LEGACY, XML_CATALOGUE]  # LATE has nothing in the period
    assert list(rows.columns) == list(input_columns(RULESET))
    assert dict(zip(rows["agency"], rows["dossiers_in_period"], strict=True)) == {
        DEPARTMENT: 8,  # received or finished in Q3: a01–a07, a11
        LEGACY: 2,
        XML_CATALOGUE: 0,
    }
    assert rows.to_dict("records") == hand_inputs().to_dict("records")

    report = assemble_service_index(rows, Q3, province_code=PROVINCE, ruleset=RULESET)
    assert list(report.columns) == list(REPORT_COLUMNS)
    entities = list(dict.fromkeys(zip(report["kind"], report["agency"], strict=True)))
    assert entities == [
        (Kind.AGENCY, DEPARTMENT),
        (Kind.AGENCY, LEGACY),
        (Kind.AGENCY, XML_CATALOGUE),
        (Kind.PROVINCE, PROVINCE),
    ]
    for code, expected in EXPECTED_METRICS.items():
        assert metrics_of(report, code) == expected, code
        assert scores_of(report, code) == EXPECTED_GROUPS[code], code
    # Every line carries its max; the maxima are the ruleset's (100 points in six groups).
    province = report[report["agency"] == PROVINCE]
    maxima = {line["group"]: str(line["max"]) for line in province[province["line"] != Line.METRIC].to_dict("records")}
    assert maxima == {
        "TRANSPARENCY": "18.000",
        "PROGRESS": "20.000",
        "ONLINE_SERVICE": "12.000",
        "ONLINE_PAYMENT": "10.000",
        "SATISFACTION": "18.000",
        "DIGITIZATION": "22.000",
        None: "100.000",
    }
    assert all(isinstance(score, Decimal) for score in report["score"])
    not_connected = report[(report["line"] == Line.METRIC) & (report["connected"] == False)]  # noqa: E712
    assert not_connected["numerator"].isna().all() and not_connected["denominator"].isna().all()
    assert {str(score) for score in not_connected["score"]} == {"0.000"}


def test_an_empty_warehouse_gives_the_province_alone_with_zeros() -> None:
    report = assemble_service_index(pd.DataFrame(columns=list(input_columns(RULESET))), Q3, PROVINCE, RULESET)
    assert set(report["agency"]) == {PROVINCE}
    assert scores_of(report, PROVINCE)[None] == "0.000"
    connected = report[(report["line"] == Line.METRIC) & (report["connected"] == True)]  # noqa: E712
    assert set(connected["denominator"]) == {0}


def test_assembly_refuses_an_agency_listed_twice_or_one_with_the_province_code() -> None:
    rows = hand_inputs()
    with pytest.raises(ContractError, match=f"agencies listed twice: {DEPARTMENT}"):
        assemble_service_index(pd.concat([rows, rows.iloc[[0]]]), Q3, PROVINCE, RULESET)
    with pytest.raises(ConfigurationError, match="the province's own code"):
        assemble_service_index(rows, Q3, DEPARTMENT, RULESET)
    with pytest.raises(ContractError, match="lack column"):
        assemble_service_index(rows.drop(columns=["dossiers_digitized_unknown"]), Q3, PROVINCE, RULESET)


# ---------------------------------------------------------------- scoring rules


def rule(maximum: str, target: str = "1", zero: ZeroDenominator = ZeroDenominator.ZERO) -> MetricRule:
    return MetricRule("M", "M", "dossiers_digitized", Decimal(maximum), Decimal(target), zero)


@pytest.mark.parametrize(
    ("metric", "numerator", "denominator", "expected"),
    [
        (rule("20"), 5, 6, "16.667"),  # 16.6666… rounds up
        (rule("6", "0.5"), 3, 7, "5.143"),  # 6 × 3/7 / 0.5 = 5.142857…
        (rule("6", "0.5"), 1, 2, "6.000"),  # exactly at the target
        (rule("6", "0.5"), 9, 10, "6.000"),  # above the target: capped at max
        (rule("2", "0.8"), 1, 2, "1.250"),  # min(2, 2.5 × 1/2)
        (rule("6", "0.9"), 3, 5, "4.000"),
        (rule("4"), 1, 8, "0.500"),
        (rule("2"), 1, 16000, "0.000"),  # 0.000125 rounds down
        (rule("2"), 1, 8000, "0.000"),  # 0.00025 rounds down
        (rule("2"), 1, 4000, "0.001"),  # 0.0005: a half, rounds up
        (rule("6"), 0, 0, "0.000"),  # zero denominator: 0 ...
        (rule("6", zero=ZeroDenominator.FULL), 0, 0, "6.000"),  # ... except the petition metrics: full points
        (rule("6", zero=ZeroDenominator.FULL), 1, 2, "3.000"),  # the full-points rule is only for 0/0
    ],
)
def test_metric_score(metric: MetricRule, numerator: int, denominator: int, expected: str) -> None:
    assert str(metric_score(metric, numerator, denominator)) == expected


def test_petition_metrics_get_full_points_without_petitions_once_connected() -> None:
    petitions = {metric.id: metric for _, metric in RULESET.metrics() if metric.measure.startswith("petitions")}
    assert set(petitions) == {"PETITIONS_ANSWERED_ON_TIME", "PETITION_SATISFACTION"}
    assert all(metric.zero_denominator is ZeroDenominator.FULL for metric in petitions.values())
    assert [str(metric_score(metric, 0, 0)) for metric in petitions.values()] == ["6.000", "6.000"]
    # Only the petition metrics get full points for nothing.
    others = [metric for _, metric in RULESET.metrics() if metric.id not in petitions]
    assert all(metric.zero_denominator is ZeroDenominator.ZERO for metric in others)


# ---------------------------------------------------------------- the ruleset file


def test_the_shipped_ruleset_is_decision_766() -> None:
    assert [ruleset.id for ruleset in shipped_rulesets()] == ["766-v1"]
    assert RULESET.decision == "766/QĐ-TTg" and RULESET.effective_from.isoformat() == "2022-06-23"
    assert [(group.id, str(group.max), len(group.metrics)) for group in RULESET.groups] == [
        ("TRANSPARENCY", "18", 4),
        ("PROGRESS", "20", 1),
        ("ONLINE_SERVICE", "12", 3),
        ("ONLINE_PAYMENT", "10", 3),
        ("SATISFACTION", "18", 3),
        ("DIGITIZATION", "22", 7),
    ]
    assert str(RULESET.max) == "100"
    unconnected = {metric.id for _, metric in RULESET.metrics() if MEASURES[metric.measure].source is None}
    assert unconnected == {
        "NATIONAL_PORTAL_SYNC",
        "PETITIONS_ANSWERED_ON_TIME",
        "PETITION_SATISFACTION",
        "CERTIFIED_COPIES_ELECTRONIC",
        "DIGITIZED_DATA_REUSED",
        "PERSONAL_STORAGE_SYNC",
        "POPULATION_DATA_DOSSIERS",
        "POPULATION_DATA_PROCEDURES",
    }


def test_no_ruleset_before_decision_766() -> None:
    with pytest.raises(RulesetError, match="no ruleset in effect on 2022-03-31"):
        ruleset_for(parse_period("2022-Q1", "CALENDAR"))
    assert ruleset_for(parse_period("2022", "CALENDAR")).id == "766-v1"  # in effect on the year's end date


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RULESET_FILE.read_text(encoding="utf-8"))
    return document


def test_a_new_regulation_is_a_new_ruleset_file_not_code() -> None:
    """A version 2 from 2027 that moves 5 points from TRANSPARENCY's portal sync to PROGRESS."""
    document = _document()
    document.update(id="766-v2", effective_from="2027-01-01")
    groups = {group["id"]: group for group in document["groups"]}
    groups["TRANSPARENCY"]["max"] = 13
    next(m for m in groups["TRANSPARENCY"]["metrics"] if m["id"] == "NATIONAL_PORTAL_SYNC")["max"] = 1
    groups["PROGRESS"]["max"] = 25
    groups["PROGRESS"]["metrics"][0]["max"] = 25
    second = load_ruleset(yaml.safe_dump(document, allow_unicode=True), "766-v2.yaml")
    first = dict(_document(), effective_to="2026-12-31")
    both = (load_ruleset(yaml.safe_dump(first, allow_unicode=True), "766-v1.yaml"), second)
    assert ruleset_for(Q3, both).id == "766-v1"
    later = parse_period("2027-Q1", "CALENDAR")
    assert ruleset_for(later, both).id == "766-v2"
    report = assemble_service_index(hand_inputs(), later, PROVINCE, second)
    assert scores_of(report, DEPARTMENT)["PROGRESS"] == "20.833"  # 25 × 5/6
    assert set(report["ruleset"]) == {"766-v2"}
    with pytest.raises(RulesetError, match="overlap"):
        ruleset_for(later, (load_ruleset(yaml.safe_dump(_document(), allow_unicode=True), "766-v1.yaml"), second))


def _broken(change: Any) -> str:
    document = _document()
    change(document)
    return yaml.safe_dump(document, allow_unicode=True)


def _group(document: dict[str, Any], group_id: str) -> dict[str, Any]:
    group: dict[str, Any] = next(group for group in document["groups"] if group["id"] == group_id)
    return group


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _group(d, "PROGRESS").update(max=21), "group PROGRESS: max 21 != sum of its metrics' maxima 20"),
        (lambda d: d.update(max=99), "max 99 != sum of the groups' maxima 100"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(measure="dossiers_on_time"), "unknown measure"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(zero_denominatr="full"), "unknown key"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(target=1.5), "must be at most 1"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(max="twenty"), "is not a number"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(zero_denominator="half"), "zero_denominator must be"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(id="ON TIME"), "must match"),
        (lambda d: _group(d, "PROGRESS")["metrics"][0].update(id="PUBLISHED_ON_TIME"), "used twice"),
        (lambda d: d["groups"].pop(), "the groups must be"),
        (lambda d: d.update(satisfied_rating_min=6), "satisfied_rating_min"),
        (lambda d: d.update(report_type="ICT_RANKING"), "not SERVICE_INDEX"),
        (lambda d: d.pop("effective_from"), "missing key(s) effective_from"),
    ],
)
def test_a_broken_ruleset_is_refused_naming_the_place(change: Any, message: str) -> None:
    with pytest.raises(RulesetError, match=re.escape(message)):
        load_ruleset(_broken(change), "broken.yaml")


def test_the_ruleset_is_package_data() -> None:
    """The loader reads through importlib.resources; pyproject's package-data must list the YAML."""
    from importlib import resources

    entry = resources.files("baocao.transforms").joinpath("rulesets", "service_index", "766-v1.yaml")
    assert entry.is_file()


# ---------------------------------------------------------------- rendering


def envelope(period: Period = Q3) -> render.Envelope:
    return render.Envelope(
        submission_id="7d1e9f0a-6f2b-4a7e-9b3c-1d2e3f4a5b6c",
        report_type="SERVICE_INDEX",
        sender_code=PROVINCE,
        sender_name="UBND tỉnh Mẫu",
        receiver_code="000.00.00.G01",
        receiver_name="Văn phòng Chính phủ",
        period=period,
        version=1,
        generated_at=datetime(2026, 10, 5, 4, 0, tzinfo=LOCAL_TIMEZONE),
        producer_name="baocao",
        producer_version="test",
        completeness=Completeness(3, 2, (XML_CATALOGUE,)),
    )


def _sandbox_violations(payload: bytes, style: Style) -> list[str]:
    """The central sandbox's own schema and business-rule checks, without HTTP."""
    parsed = parse_body(payload, style)
    validate_schema(parsed)
    submission = build_submission(style, canonical_document(parsed))
    return [violation.message for violation in check_business_rules(submission)]


def test_xml_matches_the_schema_and_the_central_rules() -> None:
    report = assemble_service_index(hand_inputs(), Q3, PROVINCE, RULESET)
    payload = render.render_xml(envelope(), "ServiceIndex", lambda body: service_index_xml_body(body, report))
    assert _sandbox_violations(payload, "xml") == []
    ns = {"s": render.NAMESPACE}
    body = etree.fromstring(payload).find("s:Body/s:ServiceIndex", ns)
    assert body is not None
    agencies = body.findall("s:Agency", ns)
    assert [(a.get("code"), a.get("total")) for a in agencies] == [
        (DEPARTMENT, "51.727"),
        (LEGACY, "18.000"),
        (XML_CATALOGUE, "3.250"),
        (PROVINCE, "49.036"),
    ]
    groups = agencies[0].findall("s:Group", ns)
    assert [(g.get("id"), g.get("score"), g.get("max")) for g in groups][:2] == [
        ("TRANSPARENCY", "9.500", "18.000"),
        ("PROGRESS", "16.667", "20.000"),
    ]
    progress = groups[1].find("s:Metric", ns)
    assert progress is not None
    assert dict(progress.attrib) == {
        "id": "RESOLVED_ON_TIME",
        "numerator": "5",
        "denominator": "6",
        "score": "16.667",
        "max": "20.000",
    }
    portal = agencies[0].find("s:Group/s:Metric[@id='NATIONAL_PORTAL_SYNC']", ns)
    assert portal is not None
    assert dict(portal.attrib) == {"id": "NATIONAL_PORTAL_SYNC", "score": "0.000", "max": "6.000"}


def test_json_matches_the_schema_and_the_central_rules() -> None:
    report = assemble_service_index(hand_inputs(), Q3, PROVINCE, RULESET)
    payload = render.render_json(envelope(), "service_index", service_index_json_body(report))
    assert _sandbox_violations(payload, "json") == []
    agencies = json.loads(payload)["body"]["service_index"]["agencies"]
    assert [(a["code"], a["total"]) for a in agencies] == [
        (DEPARTMENT, 51.727),
        (LEGACY, 18.0),
        (XML_CATALOGUE, 3.25),
        (PROVINCE, 49.036),
    ]
    legacy = {m["id"]: m for g in agencies[1]["groups"] for m in g["metrics"]}
    assert legacy["RESOLVED_ON_TIME"] == {
        "id": "RESOLVED_ON_TIME",
        "numerator": 1,
        "denominator": 2,
        "score": 10.0,
        "max": 20.0,
    }
    # The legacy database carries no electronic-result column: reported as not connected, not as 0 of 2.
    assert legacy["RESULT_ELECTRONIC"] == {"id": "RESULT_ELECTRONIC", "score": 0.0, "max": 6.0}
    assert [len(a["groups"]) for a in agencies] == [6, 6, 6, 6]


def test_a_report_without_the_province_code_does_not_render() -> None:
    report = assemble_service_index(hand_inputs(), Q3, None, RULESET)
    with pytest.raises(ContractError, match="no agency code"):
        service_index_json_body(report)


def test_a_report_with_no_agencies_still_renders() -> None:
    report = assemble_service_index(pd.DataFrame(columns=list(input_columns(RULESET))), Q3, PROVINCE, RULESET)
    render.render_xml(envelope(), "ServiceIndex", lambda body: service_index_xml_body(body, report))
    render.render_json(envelope(), "service_index", service_index_json_body(report))
