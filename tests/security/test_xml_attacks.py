"""The XML attack corpus through every XML parser we own: the catalogue reader (file, drop folder and
URL), the central sandbox (over real HTTP on loopback, run as its own process) and the XSD check of
our own rendered payloads.

Every attack is refused with the parser's error (CatalogueError, the contract's 400/422, SchemaError)
naming the source and the rule; nothing is fetched (a canary HTTP server on loopback counts every
connection it accepts); no byte of the secret file comes back; and memory stays bounded (the peak
RSS of a child process that parses the whole corpus under an address-space cap). Schema-location
hints are not attacks on a parser that validates against its own copy of the schema: they are read
as the attribute they are, and never fetched.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import xml.sax
import xml.sax.handler
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from lxml import etree

from baocao.connectors.catalogue_xml import (
    CatalogueError,
    read_catalogue_file,
    read_catalogue_folder,
    read_catalogue_url,
)
from baocao.transforms.render import SchemaError, validate_xml
from tests.security.hostile import (
    CANARY_MARKER,
    PROJECT_ROOT,
    SECRET_MARKER,
    CanaryServer,
    XmlAttack,
    canary_server,
    catalogue_target,
    file_server,
    gzip_bomb,
    oversize_document,
    parse_in_child,
    submission_target,
    xml_attacks,
)

EXAMPLE = PROJECT_ROOT / "tests" / "simulators" / "central_examples" / "tthc-results.xml"
TOKEN = "security-token"
SENDER = "000.00.00.H99"
# Read as data and never fetched (see the module docstring); everything else must be refused.
INERT = frozenset({"schema_location_hint"})
# Child processes parse under this address-space cap and must stay under this peak RSS.
ADDRESS_SPACE_MIB = 1024
PEAK_RSS_BUDGET_MIB = 400
# What each attack's refusal says, per parser: the rule, in the parser's words.
CATALOGUE_RULES = {
    "deep_nesting": "nested deeper than 32 levels",
    "huge_attribute": "a tag or text of more than 1048576 bytes",
    "xinclude_file": "uses XInclude",
    "xinclude_http": "uses XInclude",
    "xinclude_2003_namespace": "uses XInclude",
}
CENTRAL_RULES = {
    "deep_nesting": (400, "MALFORMED", "Excessive depth"),
    "huge_attribute": (422, "SCHEMA_INVALID", "extra"),
    "xinclude_file": (400, "MALFORMED", "XInclude is not allowed"),
    "xinclude_http": (400, "MALFORMED", "XInclude is not allowed"),
    "xinclude_2003_namespace": (400, "MALFORMED", "XInclude is not allowed"),
    "xinclude_in_signature": (400, "MALFORMED", "XInclude is not allowed"),
}
RENDER_RULES = {
    "deep_nesting": "Excessive depth",
    "huge_attribute": "extra",
    "xinclude_file": "uses XInclude",
    "xinclude_http": "uses XInclude",
    "xinclude_2003_namespace": "uses XInclude",
    "xinclude_in_signature": "uses XInclude",
}


def _dtd_rule(name: str, parser: str) -> str:
    """DTD-borne attacks: refused as DTDs, except that libxml2 stops entity expansion by its
    amplification limit before the DOCTYPE check after the parse is reached."""
    if parser == "catalogue":
        return "has a DOCTYPE declaration"
    if name.startswith(("billion_laughs", "quadratic_blowup")):
        return "amplification"
    return "DOCTYPE"


@pytest.fixture(scope="module")
def canary() -> Iterator[CanaryServer]:
    with canary_server() as server:
        yield server


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(f"root:x:0:0:{SECRET_MARKER}:/root:/bin/bash\n", encoding="utf-8")
    return path


def _signature_xinclude(canary: str) -> XmlAttack:
    """XInclude inside ds:Signature, whose content the schema validates laxly: only an explicit
    refusal stops it (nothing would process it, but nothing should accept it either)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    signature = (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{canary}/canary"/></ds:Signature>'
    )
    body = text.replace("</Submission>", signature + "</Submission>").encode()
    return XmlAttack("xinclude_in_signature", body, "network")


def _corpus(parser: str, secret: Path, canary: CanaryServer) -> list[XmlAttack]:
    if parser == "catalogue":
        return xml_attacks(catalogue_target(), secret, canary.base_url)
    submission = submission_target(EXAMPLE.read_bytes())
    return [*xml_attacks(submission, secret, canary.base_url), _signature_xinclude(canary.base_url)]


def _expected_rule(parser: str, name: str) -> str:
    rules = {"catalogue": CATALOGUE_RULES, "render": RENDER_RULES}[parser]
    return rules.get(name) or _dtd_rule(name, parser)


def _no_leak(text: str) -> None:
    assert SECRET_MARKER not in text and CANARY_MARKER not in text


def _write(folder: Path, attacks: list[XmlAttack]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for attack in attacks:
        paths[attack.name] = folder / f"{attack.name}.xml"
        paths[attack.name].write_bytes(attack.data)
    return paths


# ---------------------------------------------------------------- the canary works


def test_the_canary_sees_a_parser_that_fetches(secret: Path, figure: Callable[[str], None]) -> None:
    """The control: careless parsers do reach the canary and read the secret, so zero connections
    and no secret below mean that nothing was fetched. (libxml2 2.14 has no HTTP client left, so the
    network control is the standard library's SAX parser with external entities on.)"""
    with canary_server() as control:
        attacks = {a.name: a for a in xml_attacks(catalogue_target(), secret, control.base_url)}
        sax = xml.sax.make_parser()  # noqa: S317 - the control is meant to be vulnerable
        sax.setFeature(xml.sax.handler.feature_external_ges, True)
        text: list[str] = []
        handler = xml.sax.handler.ContentHandler()
        handler.characters = text.append  # type: ignore[method-assign]
        sax.setContentHandler(handler)
        sax.parse(io.BytesIO(attacks["external_entity_http"].data))
        assert CANARY_MARKER in "".join(text)
        unsafe = etree.XMLParser(load_dtd=True, resolve_entities=True)
        leaked = etree.fromstring(attacks["external_entity_file"].data, unsafe)
        assert SECRET_MARKER in etree.tostring(leaked, encoding="unicode")
        included = etree.fromstring(attacks["xinclude_file"].data).getroottree()
        included.xinclude()
        assert SECRET_MARKER in etree.tostring(included, encoding="unicode")
        connections = control.connections
    assert connections >= 1
    figure(
        f"control: a careless SAX parser made {connections} canary connection(s); careless lxml read the secret "
        "file through an external entity and through XInclude"
    )


# ---------------------------------------------------------------- catalogue reader


def test_catalogue_reader_refuses_every_attack_from_a_file_a_folder_and_a_url(
    tmp_path: Path, secret: Path, canary: CanaryServer, figure: Callable[[str], None]
) -> None:
    attacks = _corpus("catalogue", secret, canary)
    paths = _write(tmp_path / "files", attacks)
    refused = 0
    with file_server({f"/{a.name}.xml": a.data for a in attacks}) as base:
        for attack in attacks:
            readers: list[tuple[str, Callable[[], object]]] = [
                (f"{attack.name}.xml", lambda a=attack: read_catalogue_file(paths[a.name])),
                (f"{base}/{attack.name}.xml", lambda a=attack: read_catalogue_url(f"{base}/{a.name}.xml", timeout=10)),
            ]
            folder = tmp_path / "drop" / attack.name
            folder.mkdir(parents=True)
            (folder / f"{attack.name}.xml").write_bytes(attack.data)
            readers.append((f"{attack.name}.xml", lambda f=folder: read_catalogue_folder(f)))
            for source, read in readers:
                if attack.name in INERT:
                    read()  # an attribute like any other; the canary shows it was not followed
                    continue
                with pytest.raises(CatalogueError) as refused_with:
                    read()
                message = str(refused_with.value)
                assert source in message and _expected_rule("catalogue", attack.name) in message, message
                _no_leak(message)
                refused += 1
    assert canary.connections == 0, canary.requests
    rejected = len(attacks) - len(INERT)
    assert refused == rejected * 3
    figure(
        f"catalogue reader: {rejected} XML attacks × 3 ways in (file, folder, URL) refused, "
        f"{len(INERT)} schema-location hint read without fetching, {canary.connections} canary connections"
    )


def test_catalogue_over_http_refuses_oversize_and_gzip_bombs_with_bounded_memory(
    canary: CanaryServer, figure: Callable[[str], None]
) -> None:
    record = catalogue_target().inner.encode()
    big = oversize_document(catalogue_target(), 50 * 1024 * 1024 + 1)
    # 1 GiB of catalogue records sent as 1 MiB of gzip: requests inflates it on the fly.
    bomb = gzip_bomb(b"<DanhMucTTHC>", record * ((1 << 20) // len(record)), 1024)
    files: dict[str, bytes | tuple[bytes, dict[str, str]]] = {
        "/big.xml": big,
        "/bomb.xml": (bomb, {"Content-Encoding": "gzip"}),
    }
    with file_server(files) as base:
        run = parse_in_child(
            "tests.security.entry:catalogue_url",
            [f"{base}/big.xml", f"{base}/bomb.xml"],
            address_space_mib=ADDRESS_SPACE_MIB,
        )
    assert not run.crashed, run.stderr
    big_answer, bomb_answer = run.results
    assert big_answer["rejected"] and "announced, limit 52428800" in big_answer["message"], big_answer
    assert bomb_answer["rejected"] and "more than the limit of 52428800 bytes" in bomb_answer["message"], bomb_answer
    assert run.peak_rss_mib < PEAK_RSS_BUDGET_MIB
    figure(
        f"catalogue URL: 50 MiB + 1 B body and a {len(bomb) >> 10} KiB gzip bomb (1 GiB inflated) refused, "
        f"peak RSS {run.peak_rss_mib:.0f} MB ({run.baseline_rss_mib:.0f} MB after imports)"
    )


# ---------------------------------------------------------------- our own rendered XML


def test_render_check_refuses_every_attack(secret: Path, canary: CanaryServer, figure: Callable[[str], None]) -> None:
    attacks = _corpus("render", secret, canary)
    refused = 0
    for attack in attacks:
        if attack.name in INERT:
            validate_xml(attack.data)
            continue
        with pytest.raises(SchemaError) as refused_with:
            validate_xml(attack.data)
        message = str(refused_with.value)
        assert message.startswith("XML submission fails the central schema")
        assert _expected_rule("render", attack.name) in message, (attack.name, message)
        _no_leak(message)
        refused += 1
    assert canary.connections == 0, canary.requests
    figure(
        f"render XSD check: {refused} XML attacks refused, {len(INERT)} schema-location hint not fetched, "
        f"{canary.connections} canary connections"
    )


# ---------------------------------------------------------------- the central sandbox, over HTTP


@dataclass
class SandboxProcess:
    base_url: str
    process: subprocess.Popen[str]

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxProcess]:
    """The central sandbox as deployed: its own process (`python -m simulators.central`) on loopback."""
    command = [
        sys.executable, "-m", "baocao.simulators.central", "--port", "0", "--log-level", "warning",
        "--database-url", f"sqlite:///{tmp_path / 'central.db'}", "--sender", f"{TOKEN}={SENDER}",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        deadline = time.monotonic() + 30
        while True:  # the URL is printed once the socket is bound; it answers once uvicorn has started
            try:
                requests.get(f"{base_url}/submissions/none", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not start"
                time.sleep(0.1)
        yield SandboxProcess(base_url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _post(base_url: str, body: bytes, key: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/xml", "Idempotency-Key": key}
    return requests.post(f"{base_url}/submissions", data=body, headers=headers, timeout=60)


def test_central_sandbox_answers_every_attack_with_the_contract_error(
    sandbox_process: SandboxProcess, secret: Path, canary: CanaryServer, figure: Callable[[str], None]
) -> None:
    attacks = _corpus("central", secret, canary)
    # The control: the document the attacks are wrapped in is accepted as it is.
    accepted = _post(sandbox_process.base_url, EXAMPLE.read_bytes(), "control")
    assert accepted.status_code == 201, accepted.text
    answers: dict[int, int] = {}
    for number, attack in enumerate(attacks):
        response = _post(sandbox_process.base_url, attack.data, f"attack-{number}")
        _no_leak(response.text)
        if attack.name in INERT:
            # A valid submission with an xsi attribute: accepted (201), or replayed as a duplicate of the control.
            assert response.status_code in (200, 201), response.text
            continue
        status, code, words = CENTRAL_RULES.get(attack.name, (400, "MALFORMED", _dtd_rule(attack.name, "central")))
        body = response.json()
        assert (response.status_code, body["error"]) == (status, code), (attack.name, response.text[:500])
        assert set(body) == {"error", "message", "errors"} and body["errors"]
        assert words in json.dumps(body, ensure_ascii=False), (attack.name, body)
        answers[status] = answers.get(status, 0) + 1
    oversize = oversize_document(submission_target(EXAMPLE.read_bytes()), 10 * 1024 * 1024 + 1)
    too_large = _post(sandbox_process.base_url, oversize, "oversize")
    assert too_large.status_code == 413 and too_large.json()["error"] == "PAYLOAD_TOO_LARGE"
    answers[413] = 1
    peak = sandbox_process.peak_rss_mib()
    assert canary.connections == 0, canary.requests
    assert peak < PEAK_RSS_BUDGET_MIB
    summary = ", ".join(f"{count}× {status}" for status, count in sorted(answers.items()))
    figure(
        f"central sandbox over HTTP: {sum(answers.values())} attacks refused ({summary}), "
        f"{len(INERT)} schema-location hint accepted without fetching, {canary.connections} canary connections, "
        f"sandbox peak RSS {peak:.0f} MB"
    )


# ---------------------------------------------------------------- memory, each parser in a child


@pytest.mark.parametrize(
    ("parser", "function"),
    [
        ("catalogue", "tests.security.entry:catalogue_file"),
        ("central", "tests.security.entry:central_document"),
        ("render", "tests.security.entry:rendered_xml"),
    ],
)
def test_the_whole_corpus_parses_in_bounded_memory(
    parser: str,
    function: str,
    tmp_path: Path,
    secret: Path,
    canary: CanaryServer,
    figure: Callable[[str], None],
) -> None:
    attacks = [a for a in _corpus(parser, secret, canary) if a.name not in INERT]
    paths = _write(tmp_path, attacks)
    run = parse_in_child(function, [str(paths[a.name]) for a in attacks], address_space_mib=ADDRESS_SPACE_MIB)
    assert not run.crashed, run.stderr
    assert all(result["rejected"] for result in run.results), [r for r in run.results if not r["rejected"]]
    slowest = max(run.results, key=lambda result: result["seconds"])
    assert slowest["seconds"] < 5, slowest
    assert run.peak_rss_mib < PEAK_RSS_BUDGET_MIB
    assert canary.connections == 0, canary.requests
    figure(
        f"{parser}: {len(attacks)} XML attacks refused in a child capped at {ADDRESS_SPACE_MIB} MiB of address space, "
        f"peak RSS {run.peak_rss_mib:.0f} MB ({run.baseline_rss_mib:.0f} MB after imports), "
        f"slowest {slowest['seconds']:.2f} s, {canary.connections} canary connections"
    )
