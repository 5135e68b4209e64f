"""Reading a submission body: well-formedness, schema validation, and one canonical shape.

Both wire formats are turned into the same JSON-shaped document (snake_case keys, ``int`` counts,
``Decimal`` rates and scores), so business rules are written once. Paths in error answers are given
in the notation of the format the client sent: JSON Pointer for JSON, and for XML an XPath of local
names with 1-based positions on repeated elements (``/Submission/Body/TthcResults/Section[1]/Row[2]
/@receivedTotal``).
"""

from __future__ import annotations

import importlib.resources
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Literal

import jsonschema
import jsonschema.validators
from lxml import etree

from baocao.simulators.central.errors import MALFORMED, SCHEMA_INVALID, ApiError, ErrorDetail

NAMESPACE: Final = "urn:x-cchc:submission:1"
_NS: Final = "{" + NAMESPACE + "}"

Style = Literal["xml", "json"]
# A location in the canonical (JSON-shaped) document: keys and 0-based list indexes.
DocPath = tuple[str | int, ...]

# Error lists are capped so a hostile document cannot make the answer huge.
MAX_REPORTED_ERRORS: Final = 500


@dataclass(frozen=True)
class ParsedBody:
    """A well-formed body: the lxml root for XML, the decoded value for JSON."""

    style: Style
    xml_root: etree._Element | None = None
    json_value: Any = None


# ---------------------------------------------------------------- parsing (MALFORMED)


def _hardened_parser() -> etree.XMLParser:
    # No DTD loading, no entity expansion, no network: the body is untrusted input.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        encoding="utf-8",  # the contract allows UTF-8 only, whatever the XML declaration says
    )


# XInclude elements, in the namespace and in the draft one libxml2 still honours.
_XINCLUDE_TAGS: Final = ("{http://www.w3.org/2001/XInclude}*", "{http://www.w3.org/2003/XInclude}*")


def _malformed(message: str, where: str = "/") -> ApiError:
    return ApiError(400, MALFORMED, message, [ErrorDetail(MALFORMED, where, message)])


def parse_body(body: bytes, style: Style) -> ParsedBody:
    """Check that ``body`` is well-formed UTF-8 XML or JSON; raise ``ApiError`` MALFORMED if not."""
    if not body.strip():
        raise _malformed("the body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"the body is not valid UTF-8 (byte offset {exc.start})") from None
    if style == "xml":
        return ParsedBody("xml", xml_root=_parse_xml(body))
    return ParsedBody("json", json_value=_parse_json(text))


def _parse_xml(body: bytes) -> etree._Element:
    try:
        root = etree.fromstring(body, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise _malformed(f"not well-formed XML: {exc.msg}", f"line {line}, column {column}") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # A DTD has no place in a submission and is the vehicle of entity attacks.
        raise _malformed("a DOCTYPE/DTD is not allowed in a submission")
    if next(root.iter(*_XINCLUDE_TAGS), None) is not None:
        # Never processed here, but no submission has a use for it (the schema's lax ds:Signature
        # content would let one through): refused like a DTD.
        raise _malformed("XInclude is not allowed in a submission")
    return root


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Duplicate names are legal JSON but ambiguous; parsers disagree on which one wins.
            raise ValueError(f"duplicate member name {key!r}")
        result[key] = value
    return result


def _parse_json(text: str) -> Any:
    try:
        return json.loads(
            text,
            parse_float=Decimal,  # exact decimals: rates and scores are compared digit by digit
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise _malformed(f"not well-formed JSON: {exc.msg}", f"line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not acceptable JSON: {exc}") from None


def sender_code_hint(parsed: ParsedBody) -> str | None:
    """The envelope's sender code if it can be found before schema validation, else None.

    Lets the central refuse a foreign sender (403) before telling it anything about the document.
    """
    if parsed.style == "xml":
        assert parsed.xml_root is not None
        element = parsed.xml_root.find(f"{_NS}Header/{_NS}Sender")
        return None if element is None else element.get("code")
    value = parsed.json_value
    try:
        code = value["header"]["sender"]["code"]
    except (TypeError, KeyError):
        return None
    return code if isinstance(code, str) else None


# ---------------------------------------------------------------- schema validation (SCHEMA_INVALID)


def _schema_text(name: str) -> bytes:
    return importlib.resources.files("baocao.transforms").joinpath("schemas", name).read_bytes()


_xsd_local = threading.local()


def _xml_schema() -> etree.XMLSchema:
    # An XMLSchema object keeps its error log on the instance: one per thread keeps logs apart.
    schema: etree.XMLSchema | None = getattr(_xsd_local, "schema", None)
    if schema is None:
        schema = etree.XMLSchema(etree.fromstring(_schema_text("submission-v1.xsd"), _hardened_parser()))
        _xsd_local.schema = schema
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    # Draft 2020-12: an integer is any number with a zero fractional part (so 120.0 counts). Floats
    # arrive as Decimal here, which the stock checker does not recognise.
    if isinstance(instance, bool):
        return False
    if isinstance(instance, int):
        return True
    return isinstance(instance, Decimal) and instance.is_finite() and instance == instance.to_integral_value()


@lru_cache(maxsize=1)
def _json_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(_schema_text("submission-v1.schema.json"))
    base = jsonschema.Draft202012Validator
    validator_class = jsonschema.validators.extend(
        base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer)
    )
    return validator_class(schema, format_checker=base.FORMAT_CHECKER)


def validate_schema(parsed: ParsedBody) -> None:
    """Validate against the XSD or the JSON Schema; raise SCHEMA_INVALID with one error per violation."""
    details = _xsd_errors(parsed.xml_root) if parsed.style == "xml" else _json_schema_errors(parsed.json_value)
    if details:
        raise ApiError(
            422,
            SCHEMA_INVALID,
            f"the document does not conform to the submission schema ({len(details)} violation(s))",
            details[:MAX_REPORTED_ERRORS],
        )


def _shorten(message: str, limit: int = 300) -> str:
    # jsonschema quotes whole instances ("{...} has too many properties"): keep answers small.
    return message if len(message) <= limit else message[: limit - 3] + "..."


_ATTRIBUTE_IN_MESSAGE = re.compile(r"attribute '([^']+)'")


def _xsd_errors(root: etree._Element | None) -> list[ErrorDetail]:
    assert root is not None
    schema = _xml_schema()
    if schema.validate(root):
        return []
    details: list[ErrorDetail] = []
    log: Any = schema.error_log
    for entry in log:
        message = entry.message.replace(_NS, "")
        path = _readable_xml_path(root, entry.path)
        attribute = _ATTRIBUTE_IN_MESSAGE.search(message)
        if attribute:
            path = f"{path}/@{attribute.group(1)}"
        details.append(ErrorDetail(SCHEMA_INVALID, path, _shorten(f"{message} (line {entry.line})")))
    return details


# Elements that repeat; their paths always carry a 1-based position, in schema and rule errors alike.
_REPEATED_ELEMENTS: Final = frozenset({"Section", "Row", "Agency", "Group", "Metric", "Block", "Summary", "Missing"})


def _readable_xml_path(root: etree._Element, libxml_path: str | None) -> str:
    # libxml2 reports namespaced paths as /*/*[1]/*[6]; name the elements instead.
    if not libxml_path:
        return "/"
    try:
        found = root.getroottree().xpath(libxml_path)
    except etree.XPathError:
        return libxml_path
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return libxml_path
    steps: list[str] = []
    element: etree._Element | None = found[0]
    while element is not None:
        name = etree.QName(element).localname
        parent = element.getparent()
        if name in _REPEATED_ELEMENTS and parent is not None:
            same = [child for child in parent if child.tag == element.tag]
            name = f"{name}[{same.index(element) + 1}]"
        steps.append(name)
        element = parent
    return "/" + "/".join(reversed(steps))


def _json_pointer(parts: Iterator[str | int] | tuple[str | int, ...] | list[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


_REQUIRED_MESSAGE = re.compile(r"^'(.+)' is a required property$")


def _json_schema_errors(value: Any) -> list[ErrorDetail]:
    details: list[ErrorDetail] = []
    errors = sorted(_json_validator().iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        parts = list(error.absolute_path)
        missing = _REQUIRED_MESSAGE.match(error.message) if error.validator == "required" else None
        if missing:
            parts.append(missing.group(1))  # point at the missing member, not at its parent
        details.append(ErrorDetail(SCHEMA_INVALID, _json_pointer(parts) or "/", _shorten(error.message)))
    return details


# ---------------------------------------------------------------- canonical document

_INT_ATTRIBUTES: Final = frozenset(
    {
        "received_total", "received_online", "received_direct", "carried_over",
        "resolved_total", "resolved_early", "resolved_on_time", "resolved_late",
        "in_progress_total", "in_progress_within", "in_progress_overdue",
        "authority_count", "full_process_count", "partial_count", "services_with_dossiers",
        "full_process_with_dossiers", "dossiers_total", "dossiers_online", "fee_dossiers",
        "online_payment_dossiers", "rank", "count", "expected", "reported",
    }
)  # fmt: skip
_DECIMAL_ATTRIBUTES: Final = frozenset(
    {
        "on_time_rate", "full_process_with_dossiers_rate", "online_dossier_rate", "online_payment_rate",
        "share", "score", "max", "numerator", "denominator", "total",
        "infrastructure", "human_resources", "applications", "policy", "readiness_score",
    }
)  # fmt: skip


def snake_case(camel: str) -> str:
    """``receivedTotal`` -> ``received_total`` (XML attribute to canonical key)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def camel_case(snake: str) -> str:
    """``received_total`` -> ``receivedTotal`` (canonical key to XML attribute)."""
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def pascal_case(snake: str) -> str:
    """``tthc_results`` -> ``TthcResults`` (canonical key to XML element)."""
    return "".join(part.capitalize() for part in snake.split("_"))


def _attributes(element: etree._Element) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in element.attrib.items():
        key = snake_case(str(name))
        text = str(raw)
        if key in _INT_ATTRIBUTES:
            values[key] = int(text.strip())
        elif key in _DECIMAL_ATTRIBUTES:
            values[key] = Decimal(text.strip())
        else:
            values[key] = text
    return values


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return list(element.iterchildren(f"{_NS}{name}"))


def _child(element: etree._Element, name: str) -> etree._Element:
    found = element.find(f"{_NS}{name}")
    if found is None:  # the schema guarantees presence; this is a programming error
        raise LookupError(f"{name} missing under {element.tag}")
    return found


def _text(element: etree._Element, name: str) -> str | None:
    found = element.find(f"{_NS}{name}")
    return None if found is None else (found.text or "").strip()


def canonical_document(parsed: ParsedBody) -> dict[str, Any]:
    """The schema-valid body as one JSON-shaped document, whatever the wire format."""
    if parsed.style == "json":
        value: dict[str, Any] = parsed.json_value
        return value
    assert parsed.xml_root is not None
    return _xml_document(parsed.xml_root)


def _xml_document(root: etree._Element) -> dict[str, Any]:
    header = _child(root, "Header")
    completeness = _child(header, "Completeness")
    header_doc: dict[str, Any] = {
        "submission_id": _text(header, "SubmissionId"),
        "report_type": _text(header, "ReportType"),
        "sender": _attributes(_child(header, "Sender")),
        "receiver": _attributes(_child(header, "Receiver")),
        "period": _attributes(_child(header, "Period")),
        "version": int(_text(header, "Version") or "0"),
        "generated_at": _text(header, "GeneratedAt"),
        "producer": _attributes(_child(header, "Producer")),
        "completeness": {
            **_attributes(completeness),
            "missing": [str(m.get("agency")) for m in _children(completeness, "Missing")],
        },
    }
    for key, element_name in (("supersedes", "Supersedes"), ("correction_reason", "CorrectionReason")):
        text = _text(header, element_name)
        if text is not None:
            header_doc[key] = text
    # The Body's one element child (comments and processing instructions may sit beside it).
    report = next(child for child in _child(root, "Body") if isinstance(child.tag, str))
    name = etree.QName(report).localname
    return {
        "schema_version": root.get("schemaVersion"),
        "header": header_doc,
        "body": {snake_case(name): _XML_BODY_READERS[name](report)},
    }


def _xml_tthc(report: etree._Element) -> dict[str, Any]:
    return {
        "sections": [
            {
                **_attributes(section),
                "rows": [_attributes(row) for row in _children(section, "Row")],
                "total": _attributes(_child(section, "Total")),
            }
            for section in _children(report, "Section")
        ],
        "total": _attributes(_child(report, "Total")),
    }


def _xml_service_index(report: etree._Element) -> dict[str, Any]:
    return {
        "agencies": [
            {
                **_attributes(agency),
                "groups": [
                    {**_attributes(group), "metrics": [_attributes(m) for m in _children(group, "Metric")]}
                    for group in _children(agency, "Group")
                ],
            }
            for agency in _children(report, "Agency")
        ]
    }


def _xml_online(report: etree._Element) -> dict[str, Any]:
    return {
        "agencies": [_attributes(agency) for agency in _children(report, "Agency")],
        "total": _attributes(_child(report, "Total")),
    }


def _xml_ict(report: etree._Element) -> dict[str, Any]:
    return {
        "blocks": [
            {**_attributes(block), "agencies": [_attributes(a) for a in _children(block, "Agency")]}
            for block in _children(report, "Block")
        ]
    }


def _xml_egov(report: etree._Element) -> dict[str, Any]:
    return {
        "blocks": [
            {
                **_attributes(block),
                "agencies": [_attributes(a) for a in _children(block, "Agency")],
                "summary": [_attributes(s) for s in _children(block, "Summary")],
            }
            for block in _children(report, "Block")
        ]
    }


_XML_BODY_READERS: Final = {
    "TthcResults": _xml_tthc,
    "ServiceIndex": _xml_service_index,
    "OnlineServices": _xml_online,
    "IctRanking": _xml_ict,
    "EgovMaturity": _xml_egov,
}

# ---------------------------------------------------------------- paths in the client's notation

_HEADER_ELEMENTS: Final = frozenset(
    {"submission_id", "report_type", "version", "supersedes", "correction_reason", "generated_at"}
)


def render_path(style: Style, document: dict[str, Any], path: DocPath) -> str:
    """Render a canonical path as JSON Pointer (JSON) or as an XPath of local names (XML)."""
    if style == "json":
        return _json_pointer(path) or "/"
    steps = ["Submission"]
    value: Any = document
    index = 0
    while index < len(path):
        key = path[index]
        value = value.get(key) if isinstance(value, dict) else None
        following = path[index + 1] if index + 1 < len(path) else None
        if isinstance(following, int):
            # A list member: Section[i+1], Row[j+1], ...; Completeness/Missing carries its code in @agency.
            element = "Missing" if key == "missing" else _LIST_ELEMENTS.get(str(key), pascal_case(str(key)))
            steps.append(f"{element}[{following + 1}]")
            if key == "missing":
                steps.append("@agency")
            value = value[following] if isinstance(value, list) and following < len(value) else None
            index += 2
            continue
        if (
            isinstance(value, dict | list)
            or key in ("header", "body")
            or (len(path) >= 1 and path[0] == "header" and key in _HEADER_ELEMENTS)
        ):
            steps.append(pascal_case(str(key)) if key != "submission_id" else "SubmissionId")
        else:
            steps.append("@" + camel_case(str(key)))
        index += 1
    return "/" + "/".join(steps)


_LIST_ELEMENTS: Final = {
    "sections": "Section",
    "rows": "Row",
    "agencies": "Agency",
    "groups": "Group",
    "metrics": "Metric",
    "blocks": "Block",
    "summary": "Summary",
}
