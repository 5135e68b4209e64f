"""The XML parsers we own as functions of one file path (or URL), for `hostile.parse_in_child`.

Everything is imported up front, so that the child's resident set before the first call is the
baseline of the interpreter with the parsers loaded. (The file readers are in `entry_files`, which
imports no more than they need: their children run under a 512 MiB address-space cap.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baocao.connectors.catalogue_xml import read_catalogue_file, read_catalogue_url
from baocao.simulators.central.document import parse_body, validate_schema
from baocao.transforms.render import validate_xml


def catalogue_file(path: str) -> Any:
    return read_catalogue_file(path)


def catalogue_url(url: str) -> Any:
    return read_catalogue_url(url, timeout=10)


def central_document(path: str) -> Any:
    """The central sandbox's reading of a body: well-formedness, then the schema (as it answers a POST)."""
    parsed = parse_body(Path(path).read_bytes(), "xml")
    validate_schema(parsed)
    return parsed.style


def rendered_xml(path: str) -> Any:
    return validate_xml(Path(path).read_bytes())
