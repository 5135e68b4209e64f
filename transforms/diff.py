"""Cell-by-cell difference between two submissions of one report (a correction against the accepted one).

Both payloads are read the way the central reads them (XML or JSON, any of the five reports) and
flattened into cells: a cell is named by the path of the rows that hold it, each row named by its
identifying attributes (level, agency, field, code, metric, …), and the value's own name. The
header's bookkeeping (submission id, version, time of generation, supersedes, reason, producer, the
signature) is not report content and is left out; completeness is content and is compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

# Attributes or keys that name a row rather than hold a value.
IDENTIFYING = ("level", "block", "group", "section", "kind", "agency", "agency_code", "field", "code", "metric", "id")
# Header fields that change with every version without changing what is reported.
BOOKKEEPING = {
    "submission_id",
    "version",
    "generated_at",
    "supersedes",
    "correction_reason",
    "producer",
    "schema_version",
}
_XML_DS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class Change:
    cell: str
    old: str | None  # None: the cell is new in the correction
    new: str | None  # None: the cell is gone from the correction

    def __str__(self) -> str:
        return f"{self.cell}: {'—' if self.old is None else self.old} → {'—' if self.new is None else self.new}"


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


def _label(name: str, values: Mapping[str, Any]) -> tuple[str, set[str]]:
    """A row's name: its own name and its identifying attributes, e.g. `Row[agency=…, field=…]`."""
    keys = [key for key in values if _snake(key) in IDENTIFYING and not isinstance(values[key], dict | list)]
    if not keys:
        return name, set()
    return name + "[" + ", ".join(f"{_snake(key)}={values[key]}" for key in keys) + "]", set(keys)


def _xml_cells(payload: bytes) -> Iterator[tuple[str, str]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(payload, parser)

    def walk(element: Any, path: str) -> Iterator[tuple[str, str]]:
        name = etree.QName(element).localname
        if etree.QName(element).namespace == _XML_DS or _snake(name) in BOOKKEEPING:
            return
        label, used = _label(name, dict(element.attrib))
        here = f"{path} / {label}" if path else label
        for key, value in element.attrib.items():
            if key not in used:
                yield f"{here} / {_snake(key)}", value
        text = (element.text or "").strip()
        if text and len(element) == 0:
            yield here, text
        seen: dict[str, int] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            child_label, _ = _label(etree.QName(child).localname, dict(child.attrib))
            seen[child_label] = seen.get(child_label, 0) + 1
            suffix = f" #{seen[child_label]}" if seen[child_label] > 1 else ""
            for cell, value in walk(child, here):
                yield (cell.replace(f"{here} / {child_label}", f"{here} / {child_label}{suffix}", 1), value)

    for child in root:
        if isinstance(child.tag, str):
            yield from walk(child, "")


def _json_cells(payload: bytes) -> Iterator[tuple[str, str]]:
    document = json.loads(payload)

    def walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in BOOKKEEPING:
                    continue
                yield from walk(item, f"{path} / {key}" if path else key)
        elif isinstance(value, list):
            for number, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    label, used = _label("", item)
                    name = label or f"#{number}"
                    rest = {key: inner for key, inner in item.items() if key not in used}
                    yield from walk(rest, f"{path}{name}")
                else:
                    yield f"{path}[{number}]", _scalar(item)
        else:
            yield path, _scalar(value)

    yield from walk({key: item for key, item in document.items() if key not in BOOKKEEPING}, "")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cells(payload: bytes, fmt: str) -> dict[str, str]:
    """The payload's report content as {cell name: value}."""
    found = _xml_cells(payload) if fmt == "xml" else _json_cells(payload)
    return dict(found)


def diff(old_payload: bytes, new_payload: bytes, fmt: str) -> list[Change]:
    """Cells that differ, in the order of the new payload (cells only in the old one at the end)."""
    old, new = cells(old_payload, fmt), cells(new_payload, fmt)
    changes = [Change(cell, old.get(cell), value) for cell, value in new.items() if old.get(cell) != value]
    changes += [Change(cell, value, None) for cell, value in old.items() if cell not in new]
    return changes


def describe(changes: list[Change], limit: int = 200) -> str:
    """The changes as readable lines (old → new), at most `limit` of them."""
    lines = [f"  {change}" for change in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"  … and {len(changes) - limit} more")
    return "\n".join(lines)
