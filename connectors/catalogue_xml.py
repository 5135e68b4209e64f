"""Source kind `catalogue_xml`: the provincial procedure catalogue export (department-systems.md §3).

Files come from outside (a URL or a drop folder), so they are parsed as untrusted input: bounded
size, any DOCTYPE refused (hence no DTD, no entity expansion, no external entity or DTD fetched),
no XInclude, bounded nesting depth and element count. A hostile or malformed file raises
CatalogueError naming the file and the problem and yields nothing; a well-formed file yields
procedures in the REST procedure shape (§1) plus per-record rejects with reasons.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import defusedxml
import defusedxml.ElementTree as SafeElementTree
import requests

from baocao.connectors.http import TransientFault, body_chunks
from baocao.core.canonical import nfc
from baocao.core.errors import FatalError, RetriableError, RuleFailure
from baocao.core.settings import DEADLINE_TIMEOUTS

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element  # noqa: S405 - a type only; parsing goes through defusedxml

log = logging.getLogger(__name__)

ROOT_TAG = "DanhMucTTHC"
RECORD_TAG = "ThuTuc"
# The XInclude namespace, and the draft one libxml2 still honours.
XINCLUDE_NAMESPACES = frozenset({"http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"})

# Source element → REST procedure field (department-systems.md §1).
FIELD_NAMES = {
    "MaTTHC": "code",
    "TenTTHC": "name",
    "MaLinhVuc": "field_code",
    "MaDonVi": "agency_code",
    "MucDo": "online_type",
    "CoPhi": "fee_required",
    "ThanhToanTrucTuyen": "online_payment",
}
ONLINE_TYPES = {"TOAN_TRINH": "FULL", "MOT_PHAN": "PARTIAL", "KHONG": "NONE"}
FLAGS = {"0": False, "1": True}


class CatalogueError(FatalError):
    """A catalogue file that is refused whole (hostile, malformed, too big, unreachable for good)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a file source yielded: clean records, rejected records with reasons, and rows that were
    not data (titles, section headings, totals), listed so that nothing disappears silently."""

    source: str
    records: list[dict[str, Any]]
    rejects: list[RuleFailure] = field(default_factory=list)
    skipped: list[RuleFailure] = field(default_factory=list)
    encoding: str | None = None
    # The file was refused as a whole (its one reject says why): none of its rows can be trusted.
    refused_whole: bool = False


@dataclass(frozen=True, slots=True)
class XmlLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_depth: int = 32
    max_elements: int = 1_000_000
    # The longest tag (with its attributes), comment or processing instruction; a catalogue's are < 1 kB.
    # Expat (2.5 here) re-scans a token that spans the 16 kB chunks it is fed from its start at every
    # chunk, so a long one costs time quadratic in its length (CVE-2023-52425: a 12 MB attribute took
    # 9 s, a 50 MB one would take minutes); up to 1 MiB that is a few milliseconds.
    max_token_bytes: int = 1024 * 1024


def _long_token(data: bytes, limit: int) -> str | None:
    """What in `data` is a tag, comment or processing instruction longer than `limit` bytes, or None.
    A tag holds no '<' (not even in its attribute values, where '>' may stand), so a long one is a
    long run without '<' (as is a long text, which no catalogue field is either). Linear: the runs
    scanned from each '<' to the next never overlap."""
    found = re.compile(rb"<[^<]{%d}" % limit).search(data)
    if found:
        return f"a tag or text of more than {limit} bytes at byte {found.start()}"
    for opening, closing, what in ((b"<!--", b"-->", "comment"), (b"<?", b"?>", "processing instruction")):
        start = data.find(opening)
        while start >= 0:
            end = data.find(closing, start + len(opening))
            if (end if end >= 0 else len(data)) - start > limit:
                return f"a {what} of more than {limit} bytes at byte {start}"
            if end < 0:
                break
            start = data.find(opening, end + len(closing))
    return None


def parse_catalogue(data: bytes, source: str, limits: XmlLimits | None = None) -> ReadResult:
    """The procedures of one catalogue export; raises CatalogueError if the file is refused."""
    limits = limits or XmlLimits()
    if len(data) > limits.max_bytes:
        raise CatalogueError(f"catalogue {source}: {len(data)} bytes, more than the limit of {limits.max_bytes}")
    long_token = _long_token(data, limits.max_token_bytes)
    if long_token:
        raise CatalogueError(f"catalogue {source}: holds {long_token}, which is refused")
    records: list[dict[str, Any]] = []
    rejects: list[RuleFailure] = []
    skipped: list[RuleFailure] = []
    seen: dict[tuple[str, str | None], int] = {}
    try:
        for number, element in _records(data, source, limits, skipped):
            _read_record(number, element, source, records, rejects, seen)
    except defusedxml.DTDForbidden:
        raise CatalogueError(f"catalogue {source}: has a DOCTYPE declaration, which is refused (no DTDs)") from None
    except defusedxml.EntitiesForbidden:
        raise CatalogueError(f"catalogue {source}: declares entities, which are refused") from None
    except defusedxml.ExternalReferenceForbidden:
        raise CatalogueError(f"catalogue {source}: refers to an external resource, which is refused") from None
    except SafeElementTree.ParseError as problem:
        raise CatalogueError(f"catalogue {source}: not well-formed XML ({problem})") from None
    log.info("catalogue %s: %d procedure(s), %d rejected", source, len(records), len(rejects))
    return ReadResult(source, records, rejects, skipped)


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _records(data: bytes, source: str, limits: XmlLimits, skipped: list[RuleFailure]) -> Iterator[tuple[int, Element]]:
    depth = elements = number = 0
    root: Element | None = None
    events = SafeElementTree.iterparse(
        io.BytesIO(data), events=("start", "end"), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    for event, element in events:
        if event == "start":
            depth += 1
            elements += 1
            namespace, name = _local(element.tag)
            if namespace in XINCLUDE_NAMESPACES:
                raise CatalogueError(f"catalogue {source}: uses XInclude ({name}), which is refused")
            if depth > limits.max_depth:
                raise CatalogueError(f"catalogue {source}: elements nested deeper than {limits.max_depth} levels")
            if elements > limits.max_elements:
                raise CatalogueError(f"catalogue {source}: more than {limits.max_elements} elements")
            if depth == 1:
                if name != ROOT_TAG:
                    raise CatalogueError(f"catalogue {source}: root element is {name!r}, expected {ROOT_TAG!r}")
                root = element
            continue
        depth -= 1
        if depth != 1:
            continue
        _, name = _local(element.tag)
        if name == RECORD_TAG:
            number += 1
            yield number, element
        else:
            skipped.append(RuleFailure("catalogue.unknown_element", f"{source} <{name}>", "not a ThuTuc: ignored"))
        if root is not None:
            root.remove(element)  # keep memory flat on big catalogues


def _read_record(
    number: int,
    element: Element,
    source: str,
    records: list[dict[str, Any]],
    rejects: list[RuleFailure],
    seen: dict[tuple[str, str | None], int],
) -> None:
    values: dict[str, str | None] = {}
    problems: list[tuple[str, str]] = []
    for child in element:
        _, name = _local(child.tag)
        if name not in FIELD_NAMES:
            continue  # newer exports may carry more fields
        if name in values:
            problems.append(("catalogue.structure", f"{name} appears more than once"))
        elif len(child):
            problems.append(("catalogue.structure", f"{name} holds elements instead of text"))
        values[name] = nfc(child.text)
    code = values.get("MaTTHC")
    record_key = f"{source} ThuTuc #{number}" + (f" (MaTTHC {code})" if code else "")
    for name in ("MaTTHC", "TenTTHC", "MaLinhVuc", "MaDonVi", "MucDo", "CoPhi", "ThanhToanTrucTuyen"):
        if not values.get(name):
            problems.append(("catalogue.required", f"missing {name}"))
    online = values.get("MucDo")
    if online and online.upper() not in ONLINE_TYPES:
        problems.append(("catalogue.online_type", f"unknown MucDo {online!r} (expected {', '.join(ONLINE_TYPES)})"))
    for name in ("CoPhi", "ThanhToanTrucTuyen"):
        flag = values.get(name)
        if flag and flag not in FLAGS:
            problems.append(("catalogue.flag", f"{name} must be 0 or 1, got {flag!r}"))
    key = (code or "", values.get("MaDonVi"))
    if code and not problems and key in seen:
        problems.append(("catalogue.duplicate", f"same MaTTHC and MaDonVi as ThuTuc #{seen[key]}"))
    if problems:
        rejects.append(RuleFailure(problems[0][0], record_key, "; ".join(detail for _, detail in problems)))
        return
    seen[key] = number
    records.append(
        {
            "code": code,
            "name": values["TenTTHC"],
            "field_code": values["MaLinhVuc"],
            "agency_code": values["MaDonVi"],
            "online_type": ONLINE_TYPES[str(online).upper()],
            "fee_required": FLAGS[str(values["CoPhi"])],
            "online_payment": FLAGS[str(values["ThanhToanTrucTuyen"])],
        }
    )


def read_catalogue_file(path: Path | str, limits: XmlLimits | None = None) -> ReadResult:
    """One catalogue file; its size is checked before it is read."""
    limits = limits or XmlLimits()
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise CatalogueError(f"catalogue {path.name}: not a regular file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise CatalogueError(f"catalogue {path.name}: {size} bytes, more than the limit of {limits.max_bytes}")
    with path.open("rb") as handle:
        data = handle.read(limits.max_bytes + 1)  # the file may grow between stat and read
    return parse_catalogue(data, path.name, limits)


def read_catalogue_folder(folder: Path | str, limits: XmlLimits | None = None) -> list[ReadResult]:
    """Every `*.xml` file of a drop folder, by name. One refused file stops the lot (CatalogueError
    naming it): a hostile file in the drop folder is for a person to look at."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CatalogueError(f"catalogue folder {folder} does not exist")
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() == ".xml")
    return [read_catalogue_file(path, limits) for path in paths]


def _public_url(url: str) -> str:
    """The URL without credentials, query or fragment, fit for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


MAX_REDIRECTS = 5


def _same_host(first: str, then: str) -> bool:
    """Whether a redirect from `first` to `then` stays on the same host: same scheme and port, or the
    same host name moving from http up to https (never down)."""
    a, b = urlsplit(first), urlsplit(then)
    if b.scheme not in ("http", "https") or (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    if a.scheme == b.scheme:
        default = 443 if a.scheme == "https" else 80
        return (a.port or default) == (b.port or default)
    return (a.scheme, b.scheme) == ("http", "https")


def _get_following_same_host(http: requests.Session, url: str, name: str, timeout: float) -> requests.Response:
    """GET `url`, following redirects only within its own host (`_same_host`), at most MAX_REDIRECTS.

    The catalogue's URL is configuration; where it redirects to is the server's answer. A redirect to
    another host could hand the reader a file from anywhere (or reach an internal address): refused.
    """
    for _ in range(MAX_REDIRECTS + 1):
        response = http.get(
            url, stream=True, timeout=timeout, headers={"Accept": "application/xml"}, allow_redirects=False
        )
        if not response.is_redirect:
            return response
        target = urljoin(url, response.headers.get("Location", ""))
        response.close()
        if not _same_host(url, target):
            raise CatalogueError(
                f"catalogue {name}: redirected to {_public_url(target)}, another host or scheme: not followed"
            )
        url = target
    raise CatalogueError(f"catalogue {name}: more than {MAX_REDIRECTS} redirects")


def read_catalogue_url(
    url: str,
    limits: XmlLimits | None = None,
    *,
    timeout: float = 30.0,
    deadline_seconds: float | None = None,
    session: requests.Session | None = None,
) -> ReadResult:
    """The catalogue served over HTTP(S); the size limit and the deadline (default: 4 timeouts, for the
    whole download) are enforced while the body streams in."""
    limits = limits or XmlLimits()
    deadline = time.monotonic() + (deadline_seconds if deadline_seconds is not None else DEADLINE_TIMEOUTS * timeout)
    name = _public_url(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise CatalogueError(f"catalogue {name}: only http and https URLs are read")
    http = session or requests.Session()
    try:
        with _get_following_same_host(http, url, name, timeout) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise RetriableError(f"catalogue {name}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise CatalogueError(f"catalogue {name}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise CatalogueError(f"catalogue {name}: {declared} bytes announced, limit {limits.max_bytes}")
            body = bytearray()
            for chunk in body_chunks(response, deadline, timeout):
                body += chunk
                if len(body) > limits.max_bytes:
                    raise CatalogueError(f"catalogue {name}: more than the limit of {limits.max_bytes} bytes")
    except TransientFault as problem:
        raise RetriableError(f"catalogue {name}: {problem}") from None
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as problem:
        # A body cut off mid-way (ChunkedEncodingError) is a passing fault like a timeout: ask again later.
        raise RetriableError(f"catalogue {name}: {type(problem).__name__}") from None
    except requests.RequestException as problem:
        raise CatalogueError(f"catalogue {name}: {type(problem).__name__}") from None
    return parse_catalogue(bytes(body), name, limits)
