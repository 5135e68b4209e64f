"""Signing submissions (transforms/signing.py): round trips, key loading, the XSD, secrets kept out.

Keys and self-signed certificates are generated here with `cryptography`. Verification uses the
central sandbox's verifier, an implementation separate from the signer, and signxml directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from baocao.core.errors import ConfigurationError
from baocao.core.keys import SigningKey
from baocao.core.settings import Secret
from baocao.run.config import load_config
from baocao.simulators import demo
from baocao.simulators.central.document import parse_body
from baocao.simulators.central.settings import Settings
from baocao.simulators.central.signatures import PinnedCertificateVerifier
from baocao.transforms import render, signing

EXAMPLES = Path(__file__).parents[1] / "simulators" / "central_examples"
SENDER = "000.00.00.H99"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
KeyKind = Literal["rsa", "ec"]


@dataclass(frozen=True)
class Identity:
    """A generated key pair with its self-signed certificate, and the PEM texts of both."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    @property
    def cert_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.key, self.certificate)


def make_identity(
    kind: KeyKind = "rsa",
    common_name: str = "UBND tinh Mau signing",
    *,
    valid_from: datetime | None = None,
    days: int = 30,
    rsa_bits: int = 2048,
    curve: ec.EllipticCurve | None = None,
) -> Identity:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, rsa_bits) if kind == "rsa" else ec.generate_private_key(curve or ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = valid_from or datetime.now(UTC) - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return Identity(key, certificate)


def central_verifier(identity: Identity) -> PinnedCertificateVerifier:
    return PinnedCertificateVerifier(
        Settings(tokens={"t": SENDER}, signature_required={SENDER: True}, certificates={SENDER: identity.cert_pem})
    )


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module", params=["rsa", "ec"])
def identity(request: pytest.FixtureRequest) -> Identity:
    return make_identity(request.param)


# ---------------------------------------------------------------- round trips


def test_xml_round_trip_enveloped_last_child_and_still_valid_against_the_xsd(identity: Identity) -> None:
    unsigned = (EXAMPLES / "tthc-results.xml").read_bytes()
    signed = signing.sign_xml(unsigned, identity.signing_key)
    render.validate_xml(signed)  # the project's copy of the central XSD takes the signed document
    root = etree.fromstring(signed)
    assert root[-1].tag == f"{DS}Signature" and len(root.findall(f".//{DS}Signature")) == 1
    assert not {"Id", "ID", "id"} & set(root.attrib)  # the XSD allows no Id on Submission
    signed_info = root[-1].find(f"{DS}SignedInfo")
    assert signed_info is not None
    method = signed_info.find(f"{DS}SignatureMethod")
    expected_method = "#rsa-sha256" if isinstance(identity.key, rsa.RSAPrivateKey) else "#ecdsa-sha256"
    assert method is not None and method.get("Algorithm", "").endswith(expected_method)
    [reference] = signed_info.findall(f"{DS}Reference")
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    c14n = signed_info.find(f"{DS}CanonicalizationMethod")
    assert c14n is not None and c14n.get("Algorithm") == "http://www.w3.org/2001/10/xml-exc-c14n#"
    [certificate] = root[-1].iter(f"{DS}X509Certificate")
    assert base64.b64decode(certificate.text or "") == identity.certificate.public_bytes(serialization.Encoding.DER)

    # The central's verifier (pinned certificate) and signxml itself both accept it ...
    verification = central_verifier(identity).verify(
        sender=SENDER, body=signed, parsed=parse_body(signed, "xml"), headers={}
    )
    assert verification.problems == () and verification.signed is not None
    assert verification.signed.xml_root is not None and verification.signed.xml_root.find(f".//{DS}Signature") is None
    result = XMLVerifier().verify(
        signed, x509_cert=identity.certificate, expect_config=SignatureConfiguration(location="./")
    )
    assert not isinstance(result, list) and result.signed_xml is not None
    # ... and what is signed is the unsigned document's content, untouched.
    assert etree.tostring(etree.fromstring(unsigned), method="c14n", exclusive=True) == result.signed_data
    print(f"\n{identity.signing_key.algorithm} XML: {len(unsigned)} -> {len(signed)} bytes signed, verified, XSD-valid")


def test_json_detached_jws_round_trip(identity: Identity) -> None:
    body = (EXAMPLES / "tthc-results.json").read_bytes()
    signed = signing.sign_payload(body, "json", identity.signing_key)
    assert signed.payload == body  # the body stays as rendered
    assert signed.signature is not None
    protected, payload, signature = signed.signature.split(".")
    assert payload == ""  # detached: header..signature
    header = json.loads(b64url_decode(protected))
    expected_kid = base64.urlsafe_b64encode(
        hashlib.sha256(identity.certificate.public_bytes(serialization.Encoding.DER)).digest()
    ).rstrip(b"=")
    assert header == {"alg": identity.signing_key.algorithm, "kid": expected_kid.decode()}
    if identity.signing_key.algorithm == "ES256":
        assert len(b64url_decode(signature)) == 64  # R || S, not DER
    verification = central_verifier(identity).verify(
        sender=SENDER, body=body, parsed=parse_body(body, "json"), headers={"jws-signature": signed.signature}
    )
    assert verification.problems == ()
    other_body = body.replace(b'"received_total": 120', b'"received_total": 121', 1)
    assert other_body != body
    refused = central_verifier(identity).verify(
        sender=SENDER,
        body=other_body,
        parsed=parse_body(other_body, "json"),
        headers={"jws-signature": signed.signature},
    )
    assert [problem.code for problem in refused.problems] == ["SIGNATURE_INVALID"]
    print(
        f"\n{header['alg']} JWS: {len(signed.signature)} characters, kid {header['kid']}, "
        f"verified over {len(body)} bytes"
    )


def test_without_a_key_nothing_is_signed() -> None:
    body = (EXAMPLES / "tthc-results.xml").read_bytes()
    assert signing.sign_payload(body, "xml", None) == signing.SignedPayload(body, None)


def test_an_already_signed_document_is_not_signed_twice() -> None:
    signed = signing.sign_xml((EXAMPLES / "tthc-results.xml").read_bytes(), make_identity("ec").signing_key)
    with pytest.raises(signing.SigningError, match="already signed"):
        signing.sign_xml(signed, make_identity("ec").signing_key)


# ---------------------------------------------------------------- loading keys


def now() -> datetime:
    """The time of the call: the identities are made when each test runs, not when the file is collected."""
    return datetime.now(UTC)


def _secret(name: str, value: str) -> Secret:
    return Secret(name, value)


def test_pem_key_and_certificate_load_as_text_or_as_paths_relative_to_the_config(tmp_path: Path) -> None:
    identity = make_identity("ec")
    as_text = signing.load_signing_key(
        at=now(), base=tmp_path, key=_secret("K", identity.key_pem), certificate=_secret("C", identity.cert_pem)
    )
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "key.pem").write_text(identity.key_pem)
    (tmp_path / "keys" / "cert.pem").write_text(identity.cert_pem)
    as_paths = signing.load_signing_key(
        at=now(), base=tmp_path, key=_secret("K", "keys/key.pem"), certificate=_secret("C", "keys/cert.pem")
    )
    assert as_text.kid == as_paths.kid == identity.signing_key.kid
    print(f"\nPEM loaded as text and as paths: {as_paths!r}")


def test_an_encrypted_pem_key_needs_its_password_and_errors_never_show_it(tmp_path: Path) -> None:
    identity = make_identity("rsa")
    password = "mật-khẩu-rất-bí-mật"
    encrypted = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    ).decode()
    key, cert = _secret("SIGN_KEY", encrypted), _secret("SIGN_CERT", identity.cert_pem)
    loaded = signing.load_signing_key(
        at=now(), base=tmp_path, key=key, certificate=cert, password=_secret("PW", password)
    )
    assert loaded.algorithm == "RS256"
    for wrong in (None, _secret("PW", "wrong-password")):
        with pytest.raises(signing.SigningError) as caught:
            signing.load_signing_key(at=now(), base=tmp_path, key=key, certificate=cert, password=wrong)
        message = str(caught.value)
        assert "SIGN_KEY" in message and password not in message and "wrong-password" not in message
        assert "BEGIN" not in message and "MII" not in message


def test_pkcs12_loads_from_a_file_or_base64_with_its_password(tmp_path: Path) -> None:
    identity = make_identity("rsa")
    bundle = pkcs12.serialize_key_and_certificates(
        b"baocao", identity.key, identity.certificate, None, serialization.BestAvailableEncryption(b"p12-secret")
    )
    (tmp_path / "province.p12").write_bytes(bundle)
    password = _secret("P12_PASSWORD", "p12-secret")
    from_file = signing.load_signing_key(
        at=now(), base=tmp_path, pkcs12_bundle=_secret("P12", "province.p12"), password=password
    )
    from_text = signing.load_signing_key(
        at=now(), base=tmp_path, pkcs12_bundle=_secret("P12", base64.b64encode(bundle).decode()), password=password
    )
    assert from_file.kid == from_text.kid == identity.signing_key.kid
    with pytest.raises(signing.SigningError, match=r"\$P12: not a PKCS#12 bundle, or the password is wrong") as caught:
        signing.load_signing_key(
            at=now(), base=tmp_path, pkcs12_bundle=_secret("P12", "province.p12"), password=_secret("P", "nope")
        )
    assert "p12-secret" not in str(caught.value)
    print(f"\nPKCS#12 loaded from a file and from base64: {from_file!r}")


@pytest.mark.parametrize(
    ("unfit", "message"),
    [
        (lambda: make_identity("rsa", rsa_bits=1024), "at least 2048"),
        (lambda: make_identity("ec", curve=ec.SECP384R1()), "P-256"),
        (lambda: make_identity("ec", valid_from=now() - timedelta(days=60), days=30), "not now"),
    ],
    ids=["rsa-1024", "p-384", "expired"],
)
def test_unfit_keys_and_certificates_are_refused(tmp_path: Path, unfit: object, message: str) -> None:
    identity: Identity = unfit()  # type: ignore[operator]
    with pytest.raises(signing.SigningError, match=message):
        signing.load_signing_key(
            at=now(), base=tmp_path, key=_secret("K", identity.key_pem), certificate=_secret("C", identity.cert_pem)
        )


def test_a_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningError, match="not the key's"):
        signing.load_signing_key(
            at=now(),
            base=tmp_path,
            key=_secret("K", make_identity("ec").key_pem),
            certificate=_secret("C", make_identity("ec").cert_pem),
        )


def test_a_missing_file_names_the_variable_not_the_value(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningError, match=r"\$SIGN_KEY: neither PEM text nor a readable file") as caught:
        signing.load_signing_key(
            at=now(),
            base=tmp_path,
            key=_secret("SIGN_KEY", "/secret/place/key.pem"),
            certificate=_secret("C", make_identity().cert_pem),
        )
    assert "/secret/place" not in str(caught.value)


# ---------------------------------------------------------------- configuration and repr


def test_config_reads_the_signing_key_from_the_environment_and_keeps_it_out_of_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = make_identity("rsa")
    for name, value in (
        (demo.CENTRAL_TOKEN_ENV, "s3cr3t-token"),
        (demo.CLIENT_ID_ENV, "id"),
        (demo.CLIENT_SECRET_ENV, "s3cr3t"),
        (demo.SIGNING_KEY_ENV, identity.key_pem),  # PEM text in the variable itself
        (demo.SIGNING_CERT_ENV, identity.cert_pem),
    ):
        monkeypatch.setenv(name, value)
    path = tmp_path / "baocao.toml"
    demo.write_config(path, onestop_url="http://127.0.0.1:1", central_url="http://127.0.0.1:2/api/v1", signing=True)
    config = load_config(path)
    assert config.central.signing is not None and config.central.signing.kid == identity.signing_key.kid
    shown = repr(config) + str(config.central) + repr(config.central.signing)
    key_body = "".join(identity.key_pem.splitlines()[1:-1])
    assert key_body[:40] not in shown and "PRIVATE KEY" not in shown and "s3cr3t" not in shown
    assert identity.signing_key.kid in shown  # the certificate's thumbprint is what identifies it

    monkeypatch.setenv(demo.SIGNING_KEY_ENV, identity.key_pem.replace("MII", "XYZ", 1))
    with pytest.raises(ConfigurationError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and demo.SIGNING_KEY_ENV in str(caught.value)
    assert "XYZ" not in str(caught.value) and key_body[40:80] not in str(caught.value)
    monkeypatch.delenv(demo.SIGNING_CERT_ENV)
    with pytest.raises(ConfigurationError, match=demo.SIGNING_CERT_ENV):
        load_config(path)
    print(f"\nconfig repr carries {config.central.signing!r}, no key material")
