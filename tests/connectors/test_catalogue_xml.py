"""The procedure catalogue export: mapping, per-record rejects, and hostile files refused whole."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from baocao.connectors.catalogue_xml import (
    CatalogueError,
    XmlLimits,
    parse_catalogue,
    read_catalogue_file,
    read_catalogue_folder,
    read_catalogue_url,
)
from baocao.core.errors import FatalError, RetriableError
from baocao.simulators.files import CatalogueEntry, catalogue_xml, sample_catalogue, write_catalogue_xml

GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<DanhMucTTHC>
  <ThuTuc>
    <MaTTHC>1.001234</MaTTHC>
    <TenTTHC>Cấp bản sao trích lục hộ tịch</TenTTHC>
    <MaLinhVuc>LV-HOTICH</MaLinhVuc>
    <MaDonVi>000.00.01.H99</MaDonVi>
    <MucDo>TOAN_TRINH</MucDo>
    <CoPhi>1</CoPhi>
    <ThanhToanTrucTuyen>1</ThanhToanTrucTuyen>
  </ThuTuc>
  <ThuTuc>
    <MaTTHC>2.000815.000.00.00.H99</MaTTHC>
    <TenTTHC>Đăng ký khai sinh</TenTTHC>
    <MaLinhVuc>LV-HOTICH</MaLinhVuc>
    <MaDonVi>000.01.01.H99</MaDonVi>
    <MucDo>MOT_PHAN</MucDo>
    <CoPhi>0</CoPhi>
    <ThanhToanTrucTuyen>0</ThanhToanTrucTuyen>
    <NgayCapNhat>2019-12-01</NgayCapNhat>
  </ThuTuc>
  <ThuTuc>
    <MaTTHC>1.000001</MaTTHC>
    <TenTTHC>Xác nhận tình trạng hôn nhân</TenTTHC>
    <MaLinhVuc>LV-HOTICH</MaLinhVuc>
    <MaDonVi>000.01.01.H99</MaDonVi>
    <MucDo>KHONG</MucDo>
    <CoPhi>0</CoPhi>
    <ThanhToanTrucTuyen>0</ThanhToanTrucTuyen>
  </ThuTuc>
</DanhMucTTHC>
""".encode()


def test_good_catalogue_maps_to_rest_procedure_fields() -> None:
    result = parse_catalogue(GOOD, "catalogue.xml")
    assert result.rejects == []
    assert result.records == [
        {
            "code": "1.001234",
            "name": "Cấp bản sao trích lục hộ tịch",
            "field_code": "LV-HOTICH",
            "agency_code": "000.00.01.H99",
            "online_type": "FULL",
            "fee_required": True,
            "online_payment": True,
        },
        {
            "code": "2.000815.000.00.00.H99",
            "name": "Đăng ký khai sinh",
            "field_code": "LV-HOTICH",
            "agency_code": "000.01.01.H99",
            "online_type": "PARTIAL",
            "fee_required": False,
            "online_payment": False,
        },
        {
            "code": "1.000001",
            "name": "Xác nhận tình trạng hôn nhân",
            "field_code": "LV-HOTICH",
            "agency_code": "000.01.01.H99",
            "online_type": "NONE",
            "fee_required": False,
            "online_payment": False,
        },
    ]


def test_simulated_catalogue_round_trips() -> None:
    entries = sample_catalogue(60)
    result = parse_catalogue(catalogue_xml(entries), "sim.xml")
    assert [record["code"] for record in result.records] == [entry.code for entry in entries]
    assert {record["online_type"] for record in result.records} == {"FULL", "PARTIAL", "NONE"}


def test_decomposed_names_come_out_nfc() -> None:
    entry = CatalogueEntry("1.1", "Đăng ky\u0301 kết hôn", "LV-HOTICH", "000.01.01.H99", "FULL", False, False)
    assert parse_catalogue(catalogue_xml([entry]), "x.xml").records[0]["name"] == "Đăng ký kết hôn"


def test_faulty_records_are_rejected_with_reasons_and_the_rest_kept() -> None:
    faulty = [
        "<ThuTuc><TenTTHC>Không mã</TenTTHC><MaLinhVuc>LV</MaLinhVuc><MaDonVi>000.00.01.H99</MaDonVi>"
        "<MucDo>KHONG</MucDo><CoPhi>0</CoPhi><ThanhToanTrucTuyen>0</ThanhToanTrucTuyen></ThuTuc>",
        "<ThuTuc><MaTTHC>9.000001</MaTTHC><TenTTHC>Mức lạ</TenTTHC><MaLinhVuc>LV</MaLinhVuc>"
        "<MaDonVi>000.00.01.H99</MaDonVi><MucDo>MUC_4</MucDo><CoPhi>0</CoPhi>"
        "<ThanhToanTrucTuyen>0</ThanhToanTrucTuyen></ThuTuc>",
        "<ThuTuc><MaTTHC>9.000002</MaTTHC><TenTTHC>Cờ lạ</TenTTHC><MaLinhVuc>LV</MaLinhVuc>"
        "<MaDonVi>000.00.01.H99</MaDonVi><MucDo>KHONG</MucDo><CoPhi>có</CoPhi>"
        "<ThanhToanTrucTuyen>0</ThanhToanTrucTuyen></ThuTuc>",
    ]
    entries = sample_catalogue(5)
    duplicate = "".join(catalogue_xml(entries[:1]).decode().splitlines()[2:-1])
    result = parse_catalogue(catalogue_xml(entries, extra_records=[*faulty, duplicate]), "drop.xml")
    assert len(result.records) == 5
    reasons = {failure.record: failure.detail for failure in result.rejects}
    assert reasons == {
        "drop.xml ThuTuc #6": "missing MaTTHC",
        "drop.xml ThuTuc #7 (MaTTHC 9.000001)": "unknown MucDo 'MUC_4' (expected TOAN_TRINH, MOT_PHAN, KHONG)",
        "drop.xml ThuTuc #8 (MaTTHC 9.000002)": "CoPhi must be 0 or 1, got 'có'",
        f"drop.xml ThuTuc #9 (MaTTHC {entries[0].code})": "same MaTTHC and MaDonVi as ThuTuc #1",
    }
    assert [failure.rule for failure in result.rejects] == [
        "catalogue.required",
        "catalogue.online_type",
        "catalogue.flag",
        "catalogue.duplicate",
    ]


def test_elements_other_than_thutuc_are_listed_as_skipped() -> None:
    data = GOOD.replace(b"</DanhMucTTHC>", b"<GhiChu>xuat ngay 1/1</GhiChu></DanhMucTTHC>")
    result = parse_catalogue(data, "c.xml")
    assert len(result.records) == 3
    assert [failure.record for failure in result.skipped] == ["c.xml <GhiChu>"]


# ---------------------------------------------------------------- hostile and broken files

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE DanhMucTTHC [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<DanhMucTTHC><ThuTuc><MaTTHC>1</MaTTHC><TenTTHC>&lol9;</TenTTHC></ThuTuc></DanhMucTTHC>
"""


def _thutuc(name: str) -> str:
    return (
        f"<ThuTuc><MaTTHC>1.1</MaTTHC><TenTTHC>{name}</TenTTHC><MaLinhVuc>LV</MaLinhVuc>"
        "<MaDonVi>000.00.01.H99</MaDonVi><MucDo>KHONG</MucDo><CoPhi>0</CoPhi>"
        "<ThanhToanTrucTuyen>0</ThanhToanTrucTuyen></ThuTuc>"
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    return secret


def _hostile_documents(secret: Path) -> dict[str, tuple[bytes, str]]:
    uri = secret.as_uri()
    return {
        "billion_laughs": (BILLION_LAUGHS, "DOCTYPE"),
        "external_entity": (
            f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "{uri}">]>'
            f"<DanhMucTTHC>{_thutuc('&x;')}</DanhMucTTHC>".encode(),
            "DOCTYPE",
        ),
        "parameter_entity": (
            f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "{uri}"> %p;]>'
            f"<DanhMucTTHC>{_thutuc('a')}</DanhMucTTHC>".encode(),
            "DOCTYPE",
        ),
        "external_dtd": (
            b'<?xml version="1.0"?><!DOCTYPE DanhMucTTHC SYSTEM "http://127.0.0.1:9/catalogue.dtd">'
            + f"<DanhMucTTHC>{_thutuc('a')}</DanhMucTTHC>".encode(),
            "DOCTYPE",
        ),
        "plain_doctype": (
            b"<!DOCTYPE DanhMucTTHC><DanhMucTTHC>" + _thutuc("a").encode() + b"</DanhMucTTHC>",
            "DOCTYPE",
        ),
        "xinclude": (
            b'<DanhMucTTHC xmlns:xi="http://www.w3.org/2001/XInclude">'
            + _thutuc("a").encode()
            + f'<ThuTuc><xi:include href="{uri}" parse="text"/></ThuTuc></DanhMucTTHC>'.encode(),
            "XInclude",
        ),
        "undefined_entity": (b"<DanhMucTTHC>" + _thutuc("&x;").encode() + b"</DanhMucTTHC>", "not well-formed"),
        "malformed": (b"<DanhMucTTHC>" + _thutuc("a").encode() + b"<ThuTuc><MaTTHC>2</ThuTuc>", "not well-formed"),
        "truncated": (GOOD[: len(GOOD) // 2], "not well-formed"),
        "not_xml": (b"MaTTHC;TenTTHC\n1.1;abc\n", "not well-formed"),
        "empty": (b"", "not well-formed"),
        "wrong_root": (b"<Catalogue>" + _thutuc("a").encode() + b"</Catalogue>", "root element is 'Catalogue'"),
        "deep": (b"<DanhMucTTHC>" + b"<a>" * 100 + b"</a>" * 100 + b"</DanhMucTTHC>", "nested deeper"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "billion_laughs",
        "external_entity",
        "parameter_entity",
        "external_dtd",
        "plain_doctype",
        "xinclude",
        "undefined_entity",
        "malformed",
        "truncated",
        "not_xml",
        "empty",
        "wrong_root",
        "deep",
    ],
)
def test_hostile_or_broken_files_are_refused_whole_with_a_clear_error(
    case: str, secret_file: Path, tmp_path: Path
) -> None:
    data, problem = _hostile_documents(secret_file)[case]
    path = tmp_path / f"{case}.xml"
    path.write_bytes(data)
    with pytest.raises(CatalogueError, match=problem) as caught:
        read_catalogue_file(path)
    message = str(caught.value)
    assert f"{case}.xml" in message
    assert "TOP-SECRET-VALUE" not in message
    assert isinstance(caught.value, FatalError)


def test_size_and_element_limits() -> None:
    with pytest.raises(CatalogueError, match="more than the limit of 100"):
        parse_catalogue(GOOD, "big.xml", XmlLimits(max_bytes=100))
    with pytest.raises(CatalogueError, match="more than 10 elements"):
        parse_catalogue(GOOD, "many.xml", XmlLimits(max_elements=10))


def test_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    path.write_bytes(b"<DanhMucTTHC>" + b" " * 2000 + b"</DanhMucTTHC>")
    with pytest.raises(CatalogueError, match="huge.xml: 2027 bytes, more than the limit of 1024"):
        read_catalogue_file(path, XmlLimits(max_bytes=1024))


# ---------------------------------------------------------------- drop folder


def test_folder_reads_every_xml_file_by_name(tmp_path: Path) -> None:
    write_catalogue_xml(tmp_path / "b.xml", sample_catalogue(3, seed=1))
    write_catalogue_xml(tmp_path / "a.XML", sample_catalogue(4, seed=2))
    (tmp_path / "readme.txt").write_text("không phải XML")
    results = read_catalogue_folder(tmp_path)
    assert [(result.source, len(result.records)) for result in results] == [("a.XML", 4), ("b.xml", 3)]


def test_one_hostile_file_stops_the_folder_naming_it(tmp_path: Path) -> None:
    write_catalogue_xml(tmp_path / "a.xml")
    (tmp_path / "b.xml").write_bytes(BILLION_LAUGHS)
    with pytest.raises(CatalogueError, match="b.xml: has a DOCTYPE"):
        read_catalogue_folder(tmp_path)


def test_missing_folder_and_symlinks_are_refused(tmp_path: Path, secret_file: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        read_catalogue_folder(tmp_path / "nowhere")
    (tmp_path / "link.xml").symlink_to(secret_file)
    with pytest.raises(CatalogueError, match="link.xml: not a regular file"):
        read_catalogue_folder(tmp_path)


# ---------------------------------------------------------------- over HTTP (loopback)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?")[0]
        if path == "/good.xml":
            self._send(200, GOOD)
        elif path == "/busy.xml":
            self._send(503, b"busy")
        elif path == "/missing.xml":
            self._send(404, b"")
        elif path == "/cut.xml":
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[: len(GOOD) // 2])  # then the connection drops
            self.close_connection = True
        elif path == "/moved.xml":  # a redirect within the host is followed
            self._redirect("/good.xml")
        elif path == "/away.xml":  # to another server: must not be followed
            self._redirect(self.headers["X-Elsewhere"])
        elif path == "/loop.xml":
            self._redirect("/loop.xml")
        elif path == "/announced.xml":
            self._send(200, GOOD, length=10**9, body=False)
        elif path == "/endless.xml":
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(b"<DanhMucTTHC>")
                for _ in range(64):
                    self.wfile.write(b"<!-- " + b"x" * 16_000 + b" -->")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading at its limit, as it should

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, data: bytes, length: int | None = None, body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_catalogue_over_http(server: str) -> None:
    result = read_catalogue_url(f"{server}/good.xml?token=abc", timeout=5)
    assert len(result.records) == 3
    assert result.source == f"{server}/good.xml"


def test_http_failures_say_what_happens_next(server: str) -> None:
    with pytest.raises(RetriableError, match="HTTP 503"):
        read_catalogue_url(f"{server}/busy.xml", timeout=5)
    with pytest.raises(CatalogueError, match="HTTP 404"):
        read_catalogue_url(f"{server}/missing.xml?key=s3cret", timeout=5)
    with pytest.raises(RetriableError, match="ConnectionError"):
        read_catalogue_url("http://127.0.0.1:9/none.xml", timeout=5)
    with pytest.raises(RetriableError, match="cut off mid-body"):  # cut off mid-body: ask again later
        read_catalogue_url(f"{server}/cut.xml", timeout=5)


def test_http_size_limit_is_enforced_while_streaming(server: str) -> None:
    limits = XmlLimits(max_bytes=100_000)
    with pytest.raises(CatalogueError, match="announced"):
        read_catalogue_url(f"{server}/announced.xml", limits, timeout=5)
    with pytest.raises(CatalogueError, match="more than the limit of 100000 bytes"):
        read_catalogue_url(f"{server}/endless.xml", limits, timeout=5)


def test_only_http_urls_and_no_secrets_in_messages(secret_file: Path) -> None:
    with pytest.raises(CatalogueError, match="only http and https") as caught:
        read_catalogue_url(secret_file.as_uri())
    assert "TOP-SECRET" not in str(caught.value)
    with pytest.raises(RetriableError) as refused:
        read_catalogue_url("http://user:pa55word@127.0.0.1:9/c.xml?token=t0ken", timeout=5)
    assert "pa55word" not in str(refused.value) and "t0ken" not in str(refused.value)


def test_redirects_are_followed_within_the_host_only(server: str) -> None:
    assert len(read_catalogue_url(f"{server}/moved.xml", timeout=5).records) == 3
    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)  # another port: another server
    hits: list[str] = []
    elsewhere.RequestHandlerClass = type("Counting", (_Handler,), {"do_GET": lambda self: hits.append(self.path)})
    thread = threading.Thread(target=elsewhere.serve_forever, daemon=True)
    thread.start()
    try:
        port = elsewhere.server_address[1]
        for target in (f"http://127.0.0.1:{port}/good.xml", f"http://localhost:{server.rsplit(':', 1)[1]}/good.xml"):
            session = requests.Session()
            session.headers["X-Elsewhere"] = target
            with pytest.raises(CatalogueError, match="another host or scheme: not followed"):
                read_catalogue_url(f"{server}/away.xml", timeout=5, session=session)
        for target in ("file:///etc/passwd", "ftp://127.0.0.1/c.xml"):
            session = requests.Session()
            session.headers["X-Elsewhere"] = target
            with pytest.raises(CatalogueError, match="not followed"):
                read_catalogue_url(f"{server}/away.xml", timeout=5, session=session)
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert hits == []  # the other server was never asked
    with pytest.raises(CatalogueError, match="more than 5 redirects"):
        read_catalogue_url(f"{server}/loop.xml", timeout=5)
