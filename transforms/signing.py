"""Signing submissions as the central requires (central-api.md, "Signatures"), with the province's key.

XML: an enveloped XML Signature (signxml) appended as the last child of the root: RSA-SHA256 or
ECDSA-SHA256, exclusive c14n, one ``Reference URI=""`` with the enveloped-signature transform, the
signer's certificate in ``KeyInfo``; the signed document is the payload. JSON: a detached JWS
(RFC 7515 compact form with an empty payload part, ``header..signature``) over the exact body bytes,
RS256 or ES256, sent in the ``JWS-Signature`` header; the body is left as rendered.

``kid`` is the SHA-256 thumbprint of the certificate. The contract does not say how it is written;
we use base64url without padding of SHA-256 over the DER certificate, as JOSE's ``x5t#S256`` does.

The key and certificate come from the secret store as PEM (key and certificate separately, the key
possibly encrypted) or PKCS#12; each is given as the text itself or a path. Error messages name the
environment variable they came from, never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner
from signxml.algorithms import SignatureConstructionMethod

from baocao.core.errors import FatalError
from baocao.core.keys import PrivateKey, SigningKey

JWS_HEADER: Final = "JWS-Signature"
XMLDSIG_NAMESPACE: Final = "http://www.w3.org/2000/09/xmldsig#"
MIN_RSA_BITS: Final = 2048


class SigningError(FatalError):
    """The signing key or certificate is missing, unreadable or unfit, or a payload cannot be signed."""


class NamedSecret(Protocol):
    """A secret read from the environment (``baocao.config.Secret``): its variable's name and value."""

    @property
    def env_name(self) -> str: ...

    @property
    def value(self) -> str: ...


@dataclass(frozen=True)
class SignedPayload:
    """What is frozen and sent: the payload bytes and, for JSON, the detached JWS sent beside them."""

    payload: bytes
    signature: str | None = None


# ---------------------------------------------------------------- loading the key


def _material(secret: NamedSecret, base: Path, what: str) -> bytes:
    """The secret's text if it holds PEM, else the contents of the file it names."""
    value = secret.value.strip()
    if "-----BEGIN" in value:
        return value.encode("ascii", errors="replace")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        return path.read_bytes()
    except OSError:
        raise SigningError(f"{what} from ${secret.env_name}: neither PEM text nor a readable file") from None


def _pkcs12_material(secret: NamedSecret, base: Path, what: str) -> bytes:
    """A PKCS#12 file named by the secret, or the file's bytes in base64 in the secret itself."""
    value = secret.value.strip()
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        if len(value) < 4096 and path.is_file():
            return path.read_bytes()
    except OSError:
        pass
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(f"{what} from ${secret.env_name}: neither a readable file nor base64 PKCS#12") from None


def _password(secret: NamedSecret | None) -> bytes | None:
    return None if secret is None else secret.value.encode("utf-8")


def _check_key(private_key: object, certificate: x509.Certificate, where: str, at: datetime) -> PrivateKey:
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise SigningError(f"{where}: an RSA key of {private_key.key_size} bits; at least {MIN_RSA_BITS} needed")
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        # ES256 is defined on P-256 only (RFC 7518 §3.4); the XML side uses the same key.
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise SigningError(f"{where}: an EC key on {private_key.curve.name}; ES256 needs P-256 (secp256r1)")
    else:
        raise SigningError(f"{where}: the key is neither RSA nor EC (RS256/ES256, RSA-SHA256/ECDSA-SHA256)")
    own = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    certified = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if own != certified:
        raise SigningError(f"{where}: the certificate is not the key's (its public key differs)")
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise SigningError(
            f"{where}: the certificate is valid from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now"
        )
    return private_key


def load_signing_key(
    *,
    at: datetime,
    base: Path,
    key: NamedSecret | None = None,
    certificate: NamedSecret | None = None,
    pkcs12_bundle: NamedSecret | None = None,
    password: NamedSecret | None = None,
) -> SigningKey:
    """Load and check the signing key: PEM ``key`` + ``certificate`` (``password`` if the key is
    encrypted), or a ``pkcs12_bundle`` (with its ``password``). ``at`` is the moment the certificate
    must be valid at; relative paths are taken from ``base``."""
    if pkcs12_bundle is not None:
        if key is not None or certificate is not None:
            raise SigningError("give either a PEM key and certificate or a PKCS#12 bundle, not both")
        where = f"signing bundle from ${pkcs12_bundle.env_name}"
        data = _pkcs12_material(pkcs12_bundle, base, "signing bundle")
        try:
            bundle = pkcs12.load_pkcs12(data, _password(password))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SigningError(f"{where}: not a PKCS#12 bundle, or the password is wrong") from None
        if bundle.key is None or bundle.cert is None:
            raise SigningError(f"{where}: the bundle must hold the private key and its certificate")
        leaf = bundle.cert.certificate
        return SigningKey(_check_key(bundle.key, leaf, where, at), leaf)
    if key is None or certificate is None:
        raise SigningError("signing needs both a key and a certificate (or a PKCS#12 bundle)")
    key_where = f"signing key from ${key.env_name}"
    try:
        private_key = serialization.load_pem_private_key(_material(key, base, "signing key"), _password(password))
    except TypeError:
        # Encrypted without a password given, or a password given for a plain key.
        raise SigningError(f"{key_where}: the key is encrypted and needs a password, or is not encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError(f"{key_where}: not a PEM private key, or the password is wrong") from None
    cert_where = f"signing certificate from ${certificate.env_name}"
    try:
        chain = x509.load_pem_x509_certificates(_material(certificate, base, "signing certificate"))
    except ValueError:
        raise SigningError(f"{cert_where}: not a PEM certificate") from None
    # The first certificate is the signer's; any others (a chain) are not sent: the central pins the leaf.
    return SigningKey(_check_key(private_key, chain[0], f"{key_where} and {cert_where}", at), chain[0])


# ---------------------------------------------------------------- signing


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def sign_xml(payload: bytes, signing_key: SigningKey) -> bytes:
    """The document with an enveloped ``ds:Signature`` as the root's last child, checked against the XSD."""
    from baocao.transforms.render import validate_xml  # render imports the warehouse; signing stays light to import

    root = etree.fromstring(payload, _hardened_parser())
    if root.find(f".//{{{XMLDSIG_NAMESPACE}}}Signature") is not None:
        raise SigningError("the XML submission is already signed")
    if any(name in root.attrib for name in ("Id", "ID", "id")):
        # signxml would then reference "#id"; the contract wants URI="" over the whole document.
        raise SigningError('the XML submission\'s root carries an Id attribute; the reference must be URI=""')
    is_rsa = isinstance(signing_key.private_key, rsa.RSAPrivateKey)
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256 if is_rsa else SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    # No reference_uri: for a root without an Id signxml writes the one Reference URI="" itself
    # (an explicit "" would be turned into "#", an unresolvable fragment).
    signed = signer.sign(root, key=signing_key.private_key, cert=[signing_key.certificate])
    ds = f"{{{XMLDSIG_NAMESPACE}}}"
    references = signed.findall(f"{ds}Signature/{ds}SignedInfo/{ds}Reference")
    if [reference.get("URI") for reference in references] != [""] or signed[-1].tag != f"{ds}Signature":
        raise SigningError('signxml did not produce one Reference URI="" in a last-child ds:Signature')
    document: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    validate_xml(document)
    return document


def sign_json(payload: bytes, signing_key: SigningKey) -> str:
    """The detached JWS (``header..signature``) over the exact body bytes."""
    header = json.dumps({"alg": signing_key.algorithm, "kid": signing_key.kid}, separators=(",", ":"))
    signing_input = f"{_b64url(header.encode('ascii'))}.{_b64url(payload)}".encode("ascii")
    private_key = signing_key.private_key
    if isinstance(private_key, rsa.RSAPrivateKey):
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        # JWS wants R || S, 32 bytes each (RFC 7518 §3.4), not the DER sequence cryptography returns.
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    protected, _, _ = signing_input.decode("ascii").partition(".")
    return f"{protected}..{_b64url(signature)}"


def sign_payload(payload: bytes, fmt: Literal["xml", "json"] | str, signing_key: SigningKey | None) -> SignedPayload:
    """Sign a rendered payload in its format; unsigned (the payload as it is) without a key."""
    if signing_key is None:
        return SignedPayload(payload)
    if fmt == "xml":
        return SignedPayload(sign_xml(payload, signing_key))
    if fmt == "json":
        return SignedPayload(payload, sign_json(payload, signing_key))
    raise SigningError(f"cannot sign a {fmt!r} submission (xml or json)")
