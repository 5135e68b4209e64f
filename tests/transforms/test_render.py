"""Rendering: payloads satisfy the central's schemas (real XSD and JSON Schema validation)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from baocao.core.canonical import LOCAL_TIMEZONE
from baocao.core.periods import parse_period
from baocao.core.report import Completeness
from baocao.transforms import render
from baocao.transforms.tthc import assemble_tthc_report
from tests.transforms.test_tthc_aggregation import REGISTRY, _grouped

SHARED_SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"
OWN_SCHEMAS = Path(__file__).resolve().parents[2] / "transforms" / "schemas"


@pytest.mark.parametrize("name", ["submission-v1.xsd", "submission-v1.schema.json"])
def test_our_copy_of_the_central_schema_equals_the_published_one(name: str) -> None:
    assert (OWN_SCHEMAS / name).read_bytes() == (SHARED_SPECS / name).read_bytes()


def _envelope() -> render.Envelope:
    return render.Envelope(
        submission_id="0b7e3a52-9d44-4c43-8f7e-5a1b2c3d4e5f",
        report_type="TTHC_RESULTS",
        sender_code="000.00.00.H99",
        sender_name="UBND tỉnh Mẫu",
        receiver_code="000.00.00.G01",
        receiver_name="Văn phòng Chính phủ",
        period=parse_period("2026-11"),
        version=1,
        generated_at=datetime(2026, 11, 15, 2, 0, tzinfo=LOCAL_TIMEZONE),
        producer_name="baocao",
        producer_version="test",
        completeness=Completeness(3, 2, ("000.01.02.H99",)),
    )


@pytest.fixture
def report(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    return assemble_tthc_report(_grouped(url, "2026-11"), REGISTRY, parse_period("2026-11"))


def test_xml_is_valid_and_carries_the_counts(report) -> None:  # type: ignore[no-untyped-def]
    payload = render.render_tthc_xml(_envelope(), report)
    document = etree.fromstring(payload)
    assert render.xml_schema().validate(document)
    ns = {"s": render.NAMESPACE}
    total = document.find("s:Body/s:TthcResults/s:Total", ns)
    assert total is not None
    assert (total.get("receivedTotal"), total.get("resolvedLate"), total.get("onTimeRate")) == ("18", "3", "75.00")
    assert [s.get("level") for s in document.findall("s:Body/s:TthcResults/s:Section", ns)] == ["PROVINCE", "COMMUNE"]
    assert document.find("s:Header/s:Completeness/s:Missing", ns).get("agency") == "000.01.02.H99"  # type: ignore[union-attr]


def test_json_is_valid_and_carries_the_counts(report) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(render.render_tthc_json(_envelope(), report))
    tthc = document["body"]["tthc_results"]
    assert tthc["total"]["received_total"] == 18 and tthc["total"]["on_time_rate"] == 75.0
    assert [s["level"] for s in tthc["sections"]] == ["PROVINCE", "COMMUNE"]
    assert document["header"]["completeness"]["missing"] == ["000.01.02.H99"]


def test_a_payload_that_breaks_the_schema_is_refused_before_it_leaves(report) -> None:  # type: ignore[no-untyped-def]
    report.loc[0, "field"] = "LV TƯ PHÁP"  # a space and diacritics: not the central's Code type
    with pytest.raises(render.SchemaError, match="field"):
        render.render_tthc_xml(_envelope(), report)
    with pytest.raises(render.SchemaError, match="field"):
        render.render_tthc_json(_envelope(), report)


def test_rates_are_written_with_two_decimals(report) -> None:  # type: ignore[no-untyped-def]
    report.loc[report["kind"] == "TOTAL", "on_time_rate"] = Decimal("75.00")
    assert b'onTimeRate="75.00"' in render.render_tthc_xml(_envelope(), report)
