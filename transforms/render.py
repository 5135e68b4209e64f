"""Submissions as the central system reads them: XML (lxml) or JSON, checked against the schema first.

The project carries its own copy of `submission-v1.xsd` and `submission-v1.schema.json` (the
central publishes them for download); a payload that fails its schema never leaves the province.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import pandas as pd
from lxml import etree

from baocao.core.errors import FatalError
from baocao.core.layouts.tthc import COUNT_COLUMNS, Kind
from baocao.core.periods import Period
from baocao.core.report import Completeness

NAMESPACE = "urn:x-cchc:submission:1"
SCHEMA_VERSION = "1.0"
XML_CONTENT_TYPE = "application/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# central-api.md: a body of more than 10 MiB gets 413; such a payload is refused before it is frozen.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# The XInclude namespace, and the draft one libxml2 still honours.
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")


class SchemaError(FatalError):
    """A rendered payload does not satisfy the central's schema: a bug or bad data, never sent."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{what} fails the central schema: " + "; ".join(problems[:10]))


@dataclass(frozen=True)
class Envelope:
    """Everything in a submission's header."""

    submission_id: str
    report_type: str
    sender_code: str
    sender_name: str
    receiver_code: str
    receiver_name: str
    period: Period
    version: int
    generated_at: datetime
    producer_name: str
    producer_version: str
    completeness: Completeness
    supersedes: str | None = None
    correction_reason: str | None = None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _schema_path(name: str) -> Any:
    return resources.files("baocao.transforms").joinpath("schemas", name)


@cache
def xml_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    with _schema_path("submission-v1.xsd").open("rb") as handle:
        return etree.XMLSchema(etree.parse(handle, parser))


@cache
def json_schema_validator() -> jsonschema.Draft202012Validator:
    with _schema_path("submission-v1.schema.json").open("rb") as handle:
        schema = json.load(handle)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _rate_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return f"{Decimal(str(value)):.2f}"


def _counts(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: int(row[name]) for name in COUNT_COLUMNS}
    rate = _rate_text(row["on_time_rate"])
    if rate is not None:
        values["on_time_rate"] = rate
    return values


# ---------------------------------------------------------------- XML


def _xml_header(root: etree._Element, envelope: Envelope) -> None:
    q = f"{{{NAMESPACE}}}"
    header = etree.SubElement(root, q + "Header")
    etree.SubElement(header, q + "SubmissionId").text = envelope.submission_id
    etree.SubElement(header, q + "ReportType").text = envelope.report_type
    etree.SubElement(header, q + "Sender", code=envelope.sender_code, name=envelope.sender_name)
    etree.SubElement(header, q + "Receiver", code=envelope.receiver_code, name=envelope.receiver_name)
    period = envelope.period
    etree.SubElement(
        header,
        q + "Period",
        type=period.type.value,
        id=period.id,
        regime=period.regime.value,
        start=period.start.isoformat(),
        end=period.end.isoformat(),
    )
    etree.SubElement(header, q + "Version").text = str(envelope.version)
    if envelope.supersedes:
        etree.SubElement(header, q + "Supersedes").text = envelope.supersedes
    if envelope.correction_reason:
        etree.SubElement(header, q + "CorrectionReason").text = envelope.correction_reason
    etree.SubElement(header, q + "GeneratedAt").text = envelope.generated_at.isoformat(timespec="seconds")
    etree.SubElement(header, q + "Producer", name=envelope.producer_name, version=envelope.producer_version)
    completeness = etree.SubElement(
        header,
        q + "Completeness",
        expected=str(envelope.completeness.expected),
        reported=str(envelope.completeness.reported),
    )
    for code in envelope.completeness.missing:
        etree.SubElement(completeness, q + "Missing", agency=code)


def _xml_counts(row: Any) -> dict[str, str]:
    return {_camel(name): str(value) for name, value in _counts(row).items()}


def qualified(name: str) -> str:
    """An element name in the submission namespace."""
    return f"{{{NAMESPACE}}}{name}"


def render_xml(envelope: Envelope, body_element: str, fill_body: Callable[[etree._Element], None]) -> bytes:
    """A whole XML submission: the header from the envelope, then `fill_body` builds the report's element.

    Checked against the XSD before it is returned.
    """
    root = etree.Element(qualified("Submission"), {"schemaVersion": SCHEMA_VERSION}, nsmap={None: NAMESPACE})  # type: ignore[dict-item]
    _xml_header(root, envelope)
    fill_body(etree.SubElement(etree.SubElement(root, qualified("Body")), qualified(body_element)))
    payload: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_xml(payload)
    return payload


def render_json(envelope: Envelope, body_key: str, body: dict[str, Any]) -> bytes:
    """A whole JSON submission, checked against the JSON Schema before it is returned."""
    document = {"schema_version": SCHEMA_VERSION, "header": _json_header(envelope), "body": {body_key: body}}
    payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    validate_json(payload)
    return payload


TTHC_BODY_ELEMENT = "TthcResults"
TTHC_BODY_KEY = "tthc_results"


def render_tthc_xml(envelope: Envelope, report: pd.DataFrame) -> bytes:
    return render_xml(envelope, TTHC_BODY_ELEMENT, lambda body: tthc_xml_body(body, report))


def tthc_xml_body(body: etree._Element, report: pd.DataFrame) -> None:
    q = f"{{{NAMESPACE}}}"
    section: etree._Element | None = None
    for row in report.to_dict("records"):
        if row["kind"] == Kind.ROW:
            if section is None or section.get("level") != row["level"]:
                section = etree.SubElement(body, q + "Section", level=str(row["level"]))
            attributes = {"agency": row["agency"], "field": row["field"], "fieldName": row["field_name"]}
            etree.SubElement(section, q + "Row", {**attributes, **_xml_counts(row)})
        elif row["kind"] == Kind.SECTION:
            if section is None or section.get("level") != row["level"]:
                section = etree.SubElement(body, q + "Section", level=str(row["level"]))
            etree.SubElement(section, q + "Total", _xml_counts(row))
            section = None
        else:
            etree.SubElement(body, q + "Total", _xml_counts(row))


def _check_size(what: str, payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SchemaError(what, [f"{len(payload)} bytes, more than the central's limit of {MAX_PAYLOAD_BYTES}"])


def validate_xml(payload: bytes) -> None:
    _check_size("XML submission", payload)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        document = etree.fromstring(payload, parser)
    except etree.XMLSyntaxError as error:
        raise SchemaError("XML submission", [f"not well-formed: {error}"]) from None
    # The renderer writes neither; a payload with one was not made here (or was tampered with), and
    # the central refuses both. Nothing is fetched either way: the parser loads no DTD and no network.
    docinfo: Any = document.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SchemaError("XML submission", ["has a DOCTYPE/DTD, which no submission carries"])
    if next(document.iter(*(f"{{{namespace}}}*" for namespace in XINCLUDE_NAMESPACES)), None) is not None:
        raise SchemaError("XML submission", ["uses XInclude, which no submission carries"])
    schema = xml_schema()
    if not schema.validate(document):
        raise SchemaError(
            "XML submission",
            [f"line {e.line}: {e.path}: {e.message}" for e in schema.error_log],  # type: ignore[attr-defined]
        )


# ---------------------------------------------------------------- JSON


def _json_counts(row: Any) -> dict[str, Any]:
    values = _counts(row)
    if "on_time_rate" in values:
        values["on_time_rate"] = float(values["on_time_rate"])
    return values


def _json_header(envelope: Envelope) -> dict[str, Any]:
    period = envelope.period
    header: dict[str, Any] = {
        "submission_id": envelope.submission_id,
        "report_type": envelope.report_type,
        "sender": {"code": envelope.sender_code, "name": envelope.sender_name},
        "receiver": {"code": envelope.receiver_code, "name": envelope.receiver_name},
        "period": {
            "type": period.type.value,
            "id": period.id,
            "regime": period.regime.value,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "version": envelope.version,
    }
    if envelope.supersedes:
        header["supersedes"] = envelope.supersedes
    if envelope.correction_reason:
        header["correction_reason"] = envelope.correction_reason
    header["generated_at"] = envelope.generated_at.isoformat(timespec="seconds")
    header["producer"] = {"name": envelope.producer_name, "version": envelope.producer_version}
    header["completeness"] = {
        "expected": envelope.completeness.expected,
        "reported": envelope.completeness.reported,
        "missing": list(envelope.completeness.missing),
    }
    return header


def render_tthc_json(envelope: Envelope, report: pd.DataFrame) -> bytes:
    return render_json(envelope, TTHC_BODY_KEY, tthc_json_body(report))


def tthc_json_body(report: pd.DataFrame) -> dict[str, Any]:
    sections: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    total: dict[str, Any] = {}
    for row in report.to_dict("records"):
        if row["kind"] in (Kind.ROW, Kind.SECTION) and (current is None or current["level"] != row["level"]):
            current = {"level": str(row["level"]), "rows": []}
            sections.append(current)
        if row["kind"] == Kind.ROW:
            assert current is not None
            current["rows"].append(
                {"agency": row["agency"], "field": row["field"], "field_name": row["field_name"], **_json_counts(row)}
            )
        elif row["kind"] == Kind.SECTION:
            assert current is not None
            current["total"] = _json_counts(row)
            current = None
        else:
            total = _json_counts(row)
    return {"sections": sections, "total": total}


def validate_json(payload: bytes) -> None:
    _check_size("JSON submission", payload)
    try:
        document = json.loads(payload)
    except ValueError as error:
        raise SchemaError("JSON submission", [f"not well-formed: {error}"]) from None
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in json_schema_validator().iter_errors(document)
    ]
    if problems:
        raise SchemaError("JSON submission", problems)
