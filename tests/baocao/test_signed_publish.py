"""Signed submissions through the pipeline to the real central sandbox, which requires signatures.

The province's key is configured as the secret store would give it (PEM files for the XML run, a
PKCS#12 bundle with its password for the JSON run). A recording relay on loopback sits between the
pipeline and the sandbox: it forwards every request unchanged and keeps what was on the wire, so the
tests can show that every try carries the frozen bytes and the frozen signature.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from baocao.core import tables
from baocao.core.errors import FatalError, RetriableError
from baocao.core.settings import Config
from baocao.run import pipeline
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.document import parse_body
from baocao.simulators.central.server import RunningSandbox, start_in_thread
from baocao.simulators.central.settings import Settings
from baocao.simulators.central.signatures import PinnedCertificateVerifier
from baocao.storage import ledger, warehouse
from baocao.transforms import signing
from tests import central_readback
from tests.transforms.test_signing import Identity, make_identity
from tests.transforms.test_tthc_aggregation import DOSSIERS, REGISTRY

TOKEN = "test-central-token"
PERIOD = "2026-11"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
P12_ENV, P12_PASSWORD_ENV = "TEST_SIGNING_P12", "TEST_SIGNING_P12_PASSWORD"


@dataclass(frozen=True)
class Sent:
    idempotency_key: str | None
    body: bytes
    jws: str | None


@dataclass
class RecordingRelay:
    """A loopback HTTP hop in front of the sandbox: forwards each request as it is, records the POSTs."""

    target: str
    sent: list[Sent] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def __enter__(self) -> RecordingRelay:
        relay = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if method == "POST":
                    relay.sent.append(
                        Sent(self.headers.get("Idempotency-Key"), body, self.headers.get("JWS-Signature"))
                    )
                wanted = ("authorization", "content-type", "idempotency-key", "jws-signature")
                headers = {name: value for name, value in self.headers.items() if name.lower() in wanted}
                answer = requests.request(
                    method, relay.target + self.path, data=body or None, headers=headers, timeout=30
                )
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Location", "Retry-After", "Idempotent-Replayed"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_POST(self) -> None:
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        threading.Thread(target=self.server.serve_forever, name="relay", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __exit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    config: Config
    sandbox: RunningSandbox
    relay: RecordingRelay
    identity: Identity
    fmt: str

    def verifier(self) -> PinnedCertificateVerifier:
        return PinnedCertificateVerifier(
            Settings(
                tokens={TOKEN: demo.DEMO_SENDER},
                signature_required={demo.DEMO_SENDER: True},
                certificates={demo.DEMO_SENDER: self.identity.cert_pem},
            )
        )

    def central_copies(self) -> int:
        return len(central_readback.submissions(self.sandbox.base_url, TOKEN, "TTHC_RESULTS", PERIOD))


def _write_keys(folder: Path, identity: Identity, monkeypatch: pytest.MonkeyPatch, how: str) -> str:
    """Put the key where the secret store would; returns the [central] lines naming the variables."""
    folder.mkdir()
    if how == "pem":
        (folder / "key.pem").write_text(identity.key_pem, encoding="ascii")
        (folder / "cert.pem").write_text(identity.cert_pem, encoding="ascii")
        monkeypatch.setenv(demo.SIGNING_KEY_ENV, "signing/key.pem")  # relative to the configuration file
        monkeypatch.setenv(demo.SIGNING_CERT_ENV, str(folder / "cert.pem"))
        return f'signing_key_env = "{demo.SIGNING_KEY_ENV}"\nsigning_cert_env = "{demo.SIGNING_CERT_ENV}"\n'
    bundle = pkcs12.serialize_key_and_certificates(
        b"province", identity.key, identity.certificate, None, serialization.BestAvailableEncryption(b"p12-pass")
    )
    monkeypatch.setenv(P12_ENV, base64.b64encode(bundle).decode("ascii"))
    monkeypatch.setenv(P12_PASSWORD_ENV, "p12-pass")
    return f'signing_pkcs12_env = "{P12_ENV}"\nsigning_password_env = "{P12_PASSWORD_ENV}"\n'


@pytest.fixture(params=[("xml", "rsa", "pem"), ("json", "ec", "pkcs12")], ids=["xml-rsa-pem", "json-ec-pkcs12"])
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    fmt, kind, how = request.param
    identity = make_identity(kind, "UBND tinh Mau")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        tokens={TOKEN: demo.DEMO_SENDER},
        signature_required={demo.DEMO_SENDER: True},
        certificates={demo.DEMO_SENDER: identity.cert_pem},
    )
    with start_in_thread(settings) as sandbox, RecordingRelay(sandbox.root_url) as relay:
        monkeypatch.setenv(demo.CENTRAL_TOKEN_ENV, TOKEN)
        monkeypatch.setenv(demo.CLIENT_ID_ENV, "unused")
        monkeypatch.setenv(demo.CLIENT_SECRET_ENV, "unused")
        config_path = tmp_path / "baocao.toml"
        demo.write_config(
            config_path,
            onestop_url="http://127.0.0.1:9",
            central_url=relay.url + "/api/v1",
            fmt=fmt,
            retry={"max_attempts": 3, "backoff_base_seconds": 0.05, "backoff_max_seconds": 2},
            signing=True,
        )
        default_lines = f'signing_key_env = "{demo.SIGNING_KEY_ENV}"\nsigning_cert_env = "{demo.SIGNING_CERT_ENV}"\n'
        lines = _write_keys(tmp_path / "signing", identity, monkeypatch, how)
        config_path.write_text(config_path.read_text(encoding="utf-8").replace(default_lines, lines), encoding="utf-8")
        (tmp_path / "agencies.csv").write_text(
            "code,name,level\n" + "".join(f"{a.code},{a.name},{a.level.value}\n" for a in REGISTRY.agencies),
            encoding="utf-8",
        )
        config = load_config(config_path)
        assert config.central.signing is not None and config.central.signing.kid == identity.signing_key.kid
        engine = warehouse.connect(config.warehouse_url)
        with engine.begin() as connection:
            connection.execute(sa.insert(tables.dossiers), DOSSIERS)
        pipeline.aggregate(config, "TTHC_RESULTS", PERIOD)
        pipeline.validate_report(config, "TTHC_RESULTS", PERIOD)
        yield World(config, sandbox, relay, identity, fmt)


def _stored_signature(config: Config, submission: int) -> str | None:
    with pipeline.engine_for(config).connect() as connection:
        value = connection.execute(
            sa.select(tables.submissions.c.signature).where(tables.submissions.c.id == submission)
        ).scalar_one()
    return None if value is None else str(value)


def _assert_verifies(world: World, payload: bytes, jws: str | None) -> None:
    headers = {"JWS-Signature": jws} if jws else {}
    verification = world.verifier().verify(
        sender=demo.DEMO_SENDER,
        body=payload,
        parsed=parse_body(payload, "xml" if world.fmt == "xml" else "json"),
        headers=headers,
    )
    assert verification.problems == () and verification.signed is not None


def test_a_signed_submission_is_frozen_then_published_and_accepted(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    submission = rendered.submission
    assert submission is not None
    if world.fmt == "xml":
        root = etree.fromstring(submission.payload)
        assert root[-1].tag == f"{DS}Signature"  # the signed document is the payload
        assert submission.signature is None and _stored_signature(world.config, submission.id) is None
    else:
        assert submission.signature is not None and submission.signature.count(".") == 2
        assert _stored_signature(world.config, submission.id) == submission.signature  # frozen beside the body
        assert rendered.path.with_name(rendered.path.name + ".jws").read_text() == submission.signature
    _assert_verifies(world, submission.payload, submission.signature)

    receipt = pipeline.publish(world.config, submission.id)
    assert receipt["status"] == "accepted"
    assert receipt["sha256"] == hashlib.sha256(submission.payload).hexdigest()
    assert world.relay.sent == [Sent(submission.idempotency_key, submission.payload, submission.signature)]
    assert world.central_copies() == 1
    print(
        f"\n{world.fmt}: frozen {len(submission.payload)} bytes"
        f"{f' + {len(submission.signature)}-char JWS' if submission.signature else ' (enveloped signature)'},"
        f" accepted as {receipt['receipt_id']}"
    )


def test_every_retry_sends_the_frozen_bytes_and_signature(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    submission = rendered.submission
    assert submission is not None
    world.sandbox.set_mode("maintenance", retry_after=0)
    with pytest.raises(RetriableError, match="503"):
        pipeline.publish(world.config, submission.id)
    world.sandbox.set_mode("normal")
    # A rerun renders nothing new: the frozen submission, its bytes and its signature come back.
    again = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert again.submission is not None
    assert (again.submission.id, again.payload, again.signature) == (
        submission.id,
        submission.payload,
        submission.signature,
    )
    receipt = pipeline.publish(world.config, submission.id)
    assert receipt["sha256"] == hashlib.sha256(submission.payload).hexdigest()
    frozen = Sent(submission.idempotency_key, submission.payload, submission.signature)
    assert len(world.relay.sent) == 4  # three tries during maintenance, one after
    assert set(world.relay.sent) == {frozen}
    assert pipeline.publish(world.config, submission.id) == receipt  # accepted: nothing sent again
    assert len(world.relay.sent) == 4 and world.central_copies() == 1
    print(f"\n{world.fmt}: {len(world.relay.sent)} POSTs, all with the frozen bytes, key and signature")


def test_the_dry_run_signs_too(world: World) -> None:
    rendered = pipeline.render(world.config, "TTHC_RESULTS", PERIOD, dry_run=True)
    assert rendered.submission is None and rendered.path.read_bytes() == rendered.payload
    jws_file = rendered.path.with_name(rendered.path.name + ".jws")
    if world.fmt == "json":
        assert rendered.signature is not None and jws_file.read_text() == rendered.signature
    else:
        assert rendered.signature is None and not jws_file.exists() and b"<ds:Signature" in rendered.payload
    _assert_verifies(world, rendered.payload, rendered.signature)
    assert world.relay.sent == []


def test_an_unsigned_submission_is_refused_by_a_central_that_requires_signatures(world: World) -> None:
    text = world.config.path.read_text(encoding="utf-8")
    unsigned_path = world.config.path.with_name("unsigned.toml")
    unsigned_path.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("signing_")), encoding="utf-8"
    )
    unsigned = load_config(unsigned_path)
    assert unsigned.central.signing is None
    rendered = pipeline.render(unsigned, "TTHC_RESULTS", PERIOD)
    assert rendered.submission is not None and rendered.signature is None
    with pytest.raises(FatalError, match="SIGNATURE_INVALID"):
        pipeline.publish(unsigned, rendered.submission.id)
    refused = ledger.get(pipeline.engine_for(unsigned), rendered.submission.id)
    assert refused.state == ledger.State.REJECTED and "must sign" in (refused.last_error or "")
    # The slot is free again: the signed configuration freezes and publishes a signed one.
    fixed = pipeline.render(world.config, "TTHC_RESULTS", PERIOD)
    assert fixed.submission is not None and fixed.submission.id != rendered.submission.id
    assert pipeline.publish(world.config, fixed.submission.id)["status"] == "accepted"
    assert world.central_copies() == 1


def test_an_existing_warehouse_gets_the_signature_column(warehouse_url: str) -> None:
    # The ledger as it was before signatures: the same table without the column (nor report_hash, later).
    old = sa.MetaData()
    sa.Table(
        "submissions",
        old,
        *[
            sa.Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
            for column in tables.submissions.columns
            if column.name not in ("signature", "report_hash")
        ],
    )
    engine = sa.create_engine(warehouse_url)
    old.create_all(engine)
    assert "signature" not in {c["name"] for c in sa.inspect(engine).get_columns("submissions")}
    engine.dispose()
    for _ in range(2):  # idempotent: the second connect finds the column and changes nothing
        upgraded = warehouse.connect(warehouse_url)
        assert "signature" in {c["name"] for c in sa.inspect(upgraded).get_columns("submissions")}
    frozen = ledger.freeze(
        upgraded,
        report_type="TTHC_RESULTS",
        period_id=PERIOD,
        regime="D09",
        sender=demo.DEMO_SENDER,
        version=1,
        fmt="json",
        content_type="application/json",
        render=lambda _: signing.SignedPayload(b"{}", "header..signature"),
    )
    assert ledger.get(upgraded, frozen.id).signature == "header..signature"
    upgraded.dispose()
    print(f"\n{upgraded.dialect.name}: signature column added to an existing submissions table, twice-safe")
