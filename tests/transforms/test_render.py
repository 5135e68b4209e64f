"""Rendering: payloads satisfy the central's schemas (real XSD and JSON Schema validation)."""

from __future__ import annotations

import hashlib
import json
import sys
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

# The central's published copy, beside a clone as ../shared/specs; a fresh clone alone has no such folder.
SHARED_SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"
OWN_SCHEMAS = Path(__file__).resolve().parents[2] / "transforms" / "schemas"
# Written from the published copy (`cd ../shared/specs && sha256sum submission-v1.xsd
# submission-v1.schema.json > ../../<clone>/transforms/schemas/SHA256SUMS`): what our copies must equal
# where the published copy is not at hand.
CHECKSUMS = "SHA256SUMS"
SCHEMAS = ["submission-v1.xsd", "submission-v1.schema.json"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded_checksums() -> dict[str, str]:
    lines = (OWN_SCHEMAS / CHECKSUMS).read_text(encoding="ascii").splitlines()
    return {name.lstrip("*"): digest for digest, name in (line.split(maxsplit=1) for line in lines if line.strip())}


def _check_schema_copy(name: str) -> str:
    """Our copy of one schema against the central's; says what vouched for it: "published" or "recorded"."""
    own = (OWN_SCHEMAS / name).read_bytes()
    recorded = _recorded_checksums()[name]
    if SHARED_SPECS.is_dir():
        published = (SHARED_SPECS / name).read_bytes()
        assert own == published, f"transforms/schemas/{name} differs from the central's published copy"
        assert recorded == _sha256(published), f"{CHECKSUMS} records another {name} than the published one"
        return "published"
    assert _sha256(own) == recorded, f"transforms/schemas/{name} differs from the checksum recorded in {CHECKSUMS}"
    return "recorded"


@pytest.mark.parametrize("name", SCHEMAS)
def test_our_copy_of_the_central_schema_equals_the_published_one(name: str) -> None:
    _check_schema_copy(name)


def test_the_recorded_checksums_cover_exactly_our_schemas() -> None:
    ours = sorted(path.name for path in OWN_SCHEMAS.iterdir() if path.suffix in (".xsd", ".json"))
    assert sorted(_recorded_checksums()) == sorted(SCHEMAS) == ours


def _copy_of(folder: Path, source: Path, *, tamper: str | None = None) -> Path:
    """A copy of a schema folder; `tamper` names a schema whose copy gets one byte more."""
    folder.mkdir()
    for path in source.iterdir():
        data = path.read_bytes()
        (folder / path.name).write_bytes(data + b" " if path.name == tamper else data)
    return folder


def test_without_the_published_copy_the_recorded_checksums_vouch_for_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "SHARED_SPECS", tmp_path / "no-shared" / "specs")
    assert [_check_schema_copy(name) for name in SCHEMAS] == ["recorded", "recorded"]
    monkeypatch.setattr(this, "OWN_SCHEMAS", _copy_of(tmp_path / "edited", OWN_SCHEMAS, tamper=SCHEMAS[0]))
    with pytest.raises(AssertionError, match="checksum recorded"):
        _check_schema_copy(SCHEMAS[0])


def test_with_the_published_copy_ours_and_the_checksums_must_both_equal_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "SHARED_SPECS", _copy_of(tmp_path / "published", OWN_SCHEMAS))
    assert [_check_schema_copy(name) for name in SCHEMAS] == ["published", "published"]
    # The central publishes a new version: our copy is behind.
    monkeypatch.setattr(this, "SHARED_SPECS", _copy_of(tmp_path / "newer", OWN_SCHEMAS, tamper=SCHEMAS[1]))
    with pytest.raises(AssertionError, match="differs from the central's published copy"):
        _check_schema_copy(SCHEMAS[1])
    # Our copy follows it, but the checksums were not written again.
    monkeypatch.setattr(this, "OWN_SCHEMAS", _copy_of(tmp_path / "followed", OWN_SCHEMAS, tamper=SCHEMAS[1]))
    with pytest.raises(AssertionError, match="records another"):
        _check_schema_copy(SCHEMAS[1])


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
