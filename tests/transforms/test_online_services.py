"""ONLINE_SERVICES against hand-computed rows (SQLite and PostgreSQL), rendering, and Đắk Lắk's 9 months of 2023.

Period 2026-10 (CALENDAR) runs from 2026-10-01 00:00 to 2026-10-31 24:00 local time.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from lxml import etree

from baocao.core import tables
from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.errors import ContractError
from baocao.core.layouts.online_services import COUNT_COLUMNS, REPORT_COLUMNS, Kind
from baocao.core.periods import Period, parse_period
from baocao.core.report import Completeness
from baocao.storage import warehouse
from baocao.transforms import render
from baocao.transforms.online_services import (
    assemble_online_services,
    online_json_body,
    online_services_query,
    online_xml_body,
    percent,
)
from tests.catalogue_fixture import reset_catalogue

OCTOBER = parse_period("2026-10", "CALENDAR")
DEPARTMENT = "000.00.01.H99"  # full catalogue, every edge
COMMUNE = "000.01.01.H99"  # dossiers only on a NONE procedure
SILENT = "000.01.02.H99"  # catalogue, no dossiers
UNLISTED = "000.01.03.H99"  # dossiers, no catalogue entries
LATE = "000.01.04.H99"  # no catalogue, a dossier only at 24:00 of the end date: not reported


def procedure(code: str, agency: str, online_type: str) -> dict[str, Any]:
    return {
        "code": code,
        "agency_code": agency,
        "name": f"Thủ tục {code}",
        "field_code": "LV-01",
        "online_type": online_type,
        "fee_required": None,
        "online_payment": None,
        "published_on_time": True,
        "publication_updated_on_time": True,
        "content_complete": True,
        "source": "test",
        "batch_id": "hand",
    }


def dossier(
    code: str,
    agency: str,
    procedure_code: str,
    channel: str,
    received: datetime | str,
    fee: bool = False,
    paid: bool = False,
    status: str = "PROCESSING",
    deleted: bool = False,
) -> dict[str, Any]:
    received_at = received if isinstance(received, datetime) else datetime.fromisoformat(received)
    return {
        "code": code,
        "agency_code": agency,
        "procedure_code": procedure_code,
        "field_code": "LV-01",
        "field_name": "Lĩnh vực",
        "channel": channel,
        "status": status,
        "received_at": received_at,
        "due_at": None,
        "finished_at": None,
        "fee_required": fee,
        "paid_online": paid,
        "digitized": False,
        "result_electronic": False,
        "rating": None,
        "updated_at": datetime(2026, 11, 2, 8, 0),
        "deleted": deleted,
        "source": "test",
        "batch_id": "hand",
    }


PROCEDURES = [
    procedure("1.000001", DEPARTMENT, "FULL"),  # P1: service, FULL
    procedure("1.000002", DEPARTMENT, "FULL"),  # P2: service, FULL
    procedure("1.000003", DEPARTMENT, "PARTIAL"),  # P3: service, PARTIAL
    procedure("1.000004", DEPARTMENT, "NONE"),  # P4: dossiers, never a service
    procedure("1.000005", DEPARTMENT, "PARTIAL"),  # P5: no dossiers
    procedure("1.000006", DEPARTMENT, "FULL"),  # P6: only dossiers that count nowhere
    procedure("1.000001", COMMUNE, "NONE"),  # same national code as P1, but NONE under this agency
    procedure("2.000002", COMMUNE, "FULL"),
    procedure("2.000002", SILENT, "PARTIAL"),
    procedure("1.000003", SILENT, "FULL"),
]

DOSSIERS = [
    dossier("a01", DEPARTMENT, "1.000001", "ONLINE", "2026-10-01 00:00", fee=True, paid=True),  # first instant
    dossier("a02", DEPARTMENT, "1.000001", "ONLINE", "2026-10-15 09:00", fee=True),
    dossier("a03", DEPARTMENT, "1.000002", "DIRECT", "2026-10-31 23:59:59", status="RESOLVED"),  # last second
    dossier("a05", DEPARTMENT, "1.000003", "POSTAL", "2026-10-10 08:00", fee=True, status="RETURNED"),
    dossier("a06", DEPARTMENT, "1.000003", "ONLINE", "2026-10-11 08:00", fee=True, paid=True),
    dossier("a07", DEPARTMENT, "1.000004", "DIRECT", "2026-10-12 08:00", fee=True),  # NONE procedure
    dossier("a08", DEPARTMENT, "9.999999", "ONLINE", "2026-10-13 08:00"),  # procedure not in the catalogue
    dossier("a09", DEPARTMENT, "1.000006", "ONLINE", "2026-10-14 08:00", status="CANCELLED"),  # nowhere
    dossier("a10", DEPARTMENT, "1.000006", "ONLINE", "2026-10-14 08:00", deleted=True),  # nowhere
    dossier("a11", DEPARTMENT, "1.000006", "ONLINE", "2026-11-01 00:00", fee=True, paid=True),  # 24:00: nowhere
    dossier("a12", DEPARTMENT, "1.000006", "ONLINE", "2026-09-30 23:59:59"),  # the day before: nowhere
    dossier("a13", DEPARTMENT, "1.000001", "ONLINE", "2026-10-16 08:00", paid=True),  # paid without a fee
    dossier("b01", COMMUNE, "1.000001", "DIRECT", "2026-10-05 08:00"),
    dossier("b02", COMMUNE, "1.000001", "ONLINE", "2026-10-06 08:00", fee=True, paid=True),
    dossier("d01", UNLISTED, "1.000001", "ONLINE", "2026-10-20 08:00"),
    dossier("d02", UNLISTED, "1.000001", "DIRECT", "2026-10-21 08:00", fee=True),
    dossier("e01", LATE, "1.000001", "ONLINE", "2026-11-01 00:00"),
]

# authority, full, partial | services, full with dossiers | dossiers, online, fee, paid online
EXPECTED = {
    DEPARTMENT: (6, 3, 2, 3, 2, 8, 5, 5, 2),
    COMMUNE: (2, 1, 0, 0, 0, 2, 1, 1, 1),
    SILENT: (2, 1, 1, 0, 0, 0, 0, 0, 0),
    UNLISTED: (0, 0, 0, 0, 0, 2, 1, 1, 0),
}
EXPECTED_TOTAL = (10, 5, 3, 3, 2, 12, 7, 7, 3)
# full_process_with_dossiers_rate, online_dossier_rate, online_payment_rate
EXPECTED_RATES: dict[str | None, tuple[str | None, ...]] = {
    DEPARTMENT: ("66.67", "62.50", "40.00"),
    COMMUNE: (None, "50.00", "100.00"),
    SILENT: (None, None, None),
    UNLISTED: (None, "50.00", "0.00"),
    None: ("66.67", "58.33", "42.86"),  # 2/3, 7/12, 3/7 recomputed from the sums
}


def hand_rows() -> pd.DataFrame:
    """The grouped rows the query must produce for OCTOBER (also the suite tests' good fixture)."""
    return pd.DataFrame([(agency, *counts) for agency, counts in EXPECTED.items()], columns=["agency", *COUNT_COLUMNS])


def grouped(url: str, period: Period, procedures: list[dict[str, Any]], dossiers: list[dict[str, Any]]) -> pd.DataFrame:
    engine = warehouse.connect(url)
    reset_catalogue(engine, procedures)
    with engine.begin() as connection:
        connection.execute(sa.delete(tables.dossiers))
        connection.execute(sa.insert(tables.dossiers), dossiers)
        rows = connection.execute(online_services_query(period)).mappings().all()
    engine.dispose()
    return pd.DataFrame([dict(row) for row in rows])


def _rates(row: dict[str, Any]) -> tuple[str | None, ...]:
    names = ("full_process_with_dossiers_rate", "online_dossier_rate", "online_payment_rate")
    return tuple(None if row[name] is None else str(row[name]) for name in names)


def test_rows_and_total_match_hand_computed_values(warehouse_url: str) -> None:
    rows = grouped(warehouse_url, OCTOBER, PROCEDURES, DOSSIERS)
    assert list(rows["agency"]) == [DEPARTMENT, COMMUNE, SILENT, UNLISTED]  # LATE has nothing in the period
    assert {r["agency"]: tuple(int(r[name]) for name in COUNT_COLUMNS) for r in rows.to_dict("records")} == EXPECTED

    report = assemble_online_services(rows, OCTOBER)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report["kind"]) == [Kind.AGENCY] * 4 + [Kind.TOTAL]
    assert list(report["agency"][:4]) == sorted(EXPECTED)
    records = report.to_dict("records")
    total = records[-1]
    assert tuple(int(total[name]) for name in COUNT_COLUMNS) == EXPECTED_TOTAL
    assert {r["agency"]: _rates(r) for r in records} == EXPECTED_RATES
    assert isinstance(total["online_payment_rate"], Decimal)


def test_the_previous_month_sees_the_other_side_of_the_start_edge(warehouse_url: str) -> None:
    """September 2026: a12 (received 09-30 23:59:59) makes P6 a full-process service with a dossier."""
    rows = grouped(warehouse_url, parse_period("2026-09", "CALENDAR"), PROCEDURES, DOSSIERS).set_index("agency")
    assert tuple(int(rows.loc[DEPARTMENT][name]) for name in COUNT_COLUMNS) == (6, 3, 2, 1, 1, 1, 1, 0, 0)
    # Agencies with a catalogue appear with zeros; agencies without one and without dossiers do not.
    assert list(rows.index) == [DEPARTMENT, COMMUNE, SILENT]
    assert tuple(int(rows.loc[SILENT][name]) for name in COUNT_COLUMNS) == (2, 1, 1, 0, 0, 0, 0, 0, 0)


def test_an_empty_warehouse_gives_a_zero_total_without_rates() -> None:
    report = assemble_online_services(pd.DataFrame(columns=["agency", *COUNT_COLUMNS]), OCTOBER)
    assert list(report["kind"]) == [Kind.TOTAL]
    total = report.to_dict("records")[0]
    assert all(total[name] == 0 for name in COUNT_COLUMNS)
    assert _rates(total) == (None, None, None)


def test_assembly_refuses_an_agency_listed_twice() -> None:
    rows = pd.concat([hand_rows(), hand_rows().iloc[[0]]], ignore_index=True)
    with pytest.raises(ContractError, match=f"agencies listed twice: {DEPARTMENT}"):
        assemble_online_services(rows, OCTOBER)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(234, 543, "43.09"), (1, 32, "3.13"), (1, 8, "12.50"), (2, 3, "66.67"), (0, 5, "0.00"), (7, 7, "100.00")],
)
def test_percent_rounds_half_up(numerator: int, denominator: int, expected: str) -> None:
    assert percent(numerator, denominator) == Decimal(expected)


def test_percent_is_absent_for_a_zero_denominator() -> None:
    assert percent(0, 0) is None


# ---------------------------------------------------------------- rendering


def envelope(period: Period = OCTOBER) -> render.Envelope:
    return render.Envelope(
        submission_id="5c1d8e0a-6f2b-4a7e-9b3c-1d2e3f4a5b6c",
        report_type="ONLINE_SERVICES",
        sender_code="000.00.00.H99",
        sender_name="UBND tỉnh Mẫu",
        receiver_code="000.00.00.G01",
        receiver_name="Văn phòng Chính phủ",
        period=period,
        version=1,
        generated_at=datetime(2026, 11, 5, 8, 0, tzinfo=LOCAL_TIMEZONE),
        producer_name="baocao",
        producer_version="test",
        completeness=Completeness(4, 4, ()),
    )


def test_xml_matches_the_schema_and_carries_rates_only_where_defined() -> None:
    report = assemble_online_services(hand_rows(), OCTOBER)
    payload = render.render_xml(envelope(), "OnlineServices", lambda body: online_xml_body(body, report))
    ns = {"s": render.NAMESPACE}
    body = etree.fromstring(payload).find("s:Body/s:OnlineServices", ns)
    assert body is not None
    agencies = body.findall("s:Agency", ns)
    assert [a.get("code") for a in agencies] == sorted(EXPECTED)
    department = agencies[0].attrib
    assert (department["authorityCount"], department["servicesWithDossiers"]) == ("6", "3")
    assert department["fullProcessWithDossiersRate"] == "66.67"
    silent = dict(body.find(f"s:Agency[@code='{SILENT}']", ns).attrib)  # type: ignore[union-attr]
    assert not {"fullProcessWithDossiersRate", "onlineDossierRate", "onlinePaymentRate"} & set(silent)
    total = body.find("s:Total", ns)
    assert total is not None
    assert (total.get("dossiersTotal"), total.get("onlineDossierRate"), total.get("onlinePaymentRate")) == (
        "12",
        "58.33",
        "42.86",
    )


def test_json_matches_the_schema() -> None:
    report = assemble_online_services(hand_rows(), OCTOBER)
    payload = render.render_json(envelope(), "online_services", online_json_body(report))
    body = json.loads(payload)["body"]["online_services"]
    assert [a["code"] for a in body["agencies"]] == sorted(EXPECTED)
    assert body["agencies"][0]["online_dossier_rate"] == 62.5
    assert "full_process_with_dossiers_rate" not in body["agencies"][1]
    assert body["total"] == {
        **dict(zip(COUNT_COLUMNS, EXPECTED_TOTAL, strict=True)),
        "full_process_with_dossiers_rate": 66.67,
        "online_dossier_rate": 58.33,
        "online_payment_rate": 42.86,
    }


def test_a_report_with_no_agencies_still_renders() -> None:
    report = assemble_online_services(pd.DataFrame(columns=["agency", *COUNT_COLUMNS]), OCTOBER)
    render.render_xml(envelope(), "OnlineServices", lambda body: online_xml_body(body, report))
    render.render_json(envelope(), "online_services", online_json_body(report))


# ---------------------------------------------------------------- Đắk Lắk, 9 months of 2023

NINE_MONTHS_2023 = parse_period("2023-9M", "CALENDAR")
SERVICES, FULL_SERVICES = 543, 234


def dak_lak_2023() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """A catalogue and dossiers for 36 agencies reproducing Đắk Lắk's published 9-month figure (DOMAIN.md):
    543 online services with dossiers, 234 of them full-process. Agency and procedure codes are
    illustrative. Around the 543, distractors the query must not count: FULL/PARTIAL procedures
    without dossiers or with only cancelled, deleted or out-of-period ones, NONE procedures with
    dossiers, dossiers on codes the agency's catalogue lacks. Also returns the expected dossier counts."""
    rng = random.Random(20230930)  # fixed seed: the same data set on every run
    agencies = [f"000.00.{i:02d}.H33" for i in range(1, 21)] + [f"000.{i:02d}.01.H33" for i in range(1, 17)]
    start, seconds = NINE_MONTHS_2023.starts_at, (NINE_MONTHS_2023.ends_before - NINE_MONTHS_2023.starts_at).days
    seconds *= 86_400
    procedures: list[dict[str, Any]] = []
    dossiers: list[dict[str, Any]] = []
    expected = {"dossiers_total": 0, "dossiers_online": 0, "fee_dossiers": 0, "online_payment_dossiers": 0}

    def add_dossier(agency: str, code: str, received: datetime, counted: bool, **flags: Any) -> None:
        channel = rng.choice(["ONLINE", "ONLINE", "DIRECT", "POSTAL"])
        fee = rng.random() < 0.4
        paid = fee and rng.random() < 0.5
        dossiers.append(dossier(f"HS{len(dossiers):06d}", agency, code, channel, received, fee, paid, **flags))
        if counted:
            expected["dossiers_total"] += 1
            expected["dossiers_online"] += channel == "ONLINE"
            expected["fee_dossiers"] += fee
            expected["online_payment_dossiers"] += paid

    def in_period() -> datetime:
        return start + timedelta(seconds=rng.randrange(seconds))

    kinds = ["FULL"] * FULL_SERVICES + ["PARTIAL"] * (SERVICES - FULL_SERVICES)
    rng.shuffle(kinds)
    numbers = dict.fromkeys(agencies, 0)

    def new_procedure(agency: str, online_type: str) -> str:
        numbers[agency] += 1
        code = f"1.{numbers[agency]:06d}"
        procedures.append(procedure(code, agency, online_type))
        return code

    for online_type in kinds:  # the 543 services with dossiers
        agency = rng.choice(agencies)
        code = new_procedure(agency, online_type)
        for _ in range(rng.randint(1, 4)):
            add_dossier(agency, code, in_period(), counted=True)
    outside = [start - timedelta(seconds=1), NINE_MONTHS_2023.ends_before]  # 2022-12-31 23:59:59; 2023-10-01 00:00
    for index, agency in enumerate(agencies):
        for online_type in ("FULL", "PARTIAL"):
            new_procedure(agency, online_type)  # offered online, no dossier at all
            code = new_procedure(agency, online_type)  # only dossiers that count nowhere
            add_dossier(agency, code, in_period(), counted=False, status="CANCELLED")
            add_dossier(agency, code, in_period(), counted=False, deleted=True)
            for received in outside:
                add_dossier(agency, code, received, counted=False)
        code = new_procedure(agency, "NONE")  # dossiers, but not an online service
        for _ in range(rng.randint(1, 3)):
            add_dossier(agency, code, in_period(), counted=True)
        # A dossier filed under another agency's procedure code that this agency's catalogue lacks.
        add_dossier(agency, f"2.{index:06d}", in_period(), counted=True)
    return procedures, dossiers, expected


def test_dak_lak_nine_months_2023_reproduces_the_published_rate(tmp_path: Path) -> None:
    procedures, dossiers, expected = dak_lak_2023()
    rows = grouped(f"sqlite:///{tmp_path / 'warehouse.db'}", NINE_MONTHS_2023, procedures, dossiers)
    assert len(rows) == 36
    report = assemble_online_services(rows, NINE_MONTHS_2023)
    total = report[report["kind"] == Kind.TOTAL].to_dict("records")[0]
    assert (total["services_with_dossiers"], total["full_process_with_dossiers"]) == (543, 234)
    assert total["full_process_with_dossiers_rate"] == Decimal("43.09")
    assert total["authority_count"] == len(procedures)
    assert total["full_process_count"] + total["partial_count"] == 543 + 36 * 4
    assert {name: int(total[name]) for name in expected} == expected
