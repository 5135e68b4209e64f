"""Verifying submission signatures at the central sandbox (central-api.md, "Signatures").

Only the certificate registered (pinned) for the sender is used: never the system trust store, and
the certificate in ``KeyInfo`` only has to be that same certificate. XML: exactly one enveloped
``ds:Signature``, the last child of the root, in the contract's profile (exclusive c14n, RSA-SHA256
or ECDSA-SHA256, SHA-256 digest, one ``Reference URI=""`` with the enveloped-signature and exclusive
c14n transforms, ``KeyInfo`` holding the one certificate); anything else that could carry unsigned
data (a second signature, ``ds:Object``, a relocated signature, processing instructions outside the
root, duplicate ids) is refused before signxml checks digest and signature. What the central then
reads is signxml's ``signed_xml``: the canonical form of what the signature covers, re-parsed.
JSON: the detached JWS in ``JWS-Signature`` (``header..signature``, RS256 or ES256 only, ``kid`` =
base64url SHA-256 thumbprint of the DER certificate) over the exact body bytes.

When: a sender that must sign and sends no signature is refused. A signature sent by a sender that
need not sign is verified too when a certificate is registered for it (a bad signature is never
accepted silently); with no certificate registered it cannot be checked and is ignored, as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.verifier import VerifyResult

from baocao.simulators.central.document import ParsedBody
from baocao.simulators.central.errors import SIGNATURE_INVALID, ErrorDetail
from baocao.simulators.central.settings import Settings

XMLDSIG: Final = "http://www.w3.org/2000/09/xmldsig#"
_DS: Final = "{" + XMLDSIG + "}"
EXCLUSIVE_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED_SIGNATURE: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256_DIGEST: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
# Signature method -> the key type the pinned certificate must have for it.
XML_SIGNATURE_METHODS: Final[dict[str, type]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": rsa.RSAPublicKey,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ec.EllipticCurvePublicKey,
}
JWS_HEADER: Final = "JWS-Signature"
JWS_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
_ID_ATTRIBUTES: Final = frozenset({"Id", "ID", "id", "{http://www.w3.org/XML/1998/namespace}id"})
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_XML_PATH: Final = "/Submission/Signature"

_XML_PROFILE: Final = SignatureConfiguration(
    require_x509=True,
    location="./",  # a child of the root; that it is the last one, and the only one, is checked before
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)


@dataclass(frozen=True)
class Verification:
    """The verdict on a submission's signature.

    ``problems`` is empty when it may go on; ``signed`` is what a verified signature covers, the only
    thing read from then on (None when no signature was checked: then the body is read as parsed).
    """

    problems: tuple[ErrorDetail, ...] = ()
    signed: ParsedBody | None = None


class SignatureVerifier(Protocol):
    """Checks a submission's signature after the envelope's sender was matched to the token."""

    def verify(self, *, sender: str, body: bytes, parsed: ParsedBody, headers: Mapping[str, str]) -> Verification: ...


def _refused(path: str, message: str) -> Verification:
    return Verification((ErrorDetail(SIGNATURE_INVALID, path, message),))


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    """base64url (no padding) of SHA-256 over the DER certificate: what ``kid`` must be."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class PinnedCertificateVerifier:
    """Verifies signatures against each sender's pinned certificate (``Settings.certificates``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._certificates: dict[str, x509.Certificate] = {}
        for sender in settings.certificates:
            certificate = settings.certificate_for(sender)
            assert certificate is not None
            self._certificates[sender] = certificate

    def verify(self, *, sender: str, body: bytes, parsed: ParsedBody, headers: Mapping[str, str]) -> Verification:
        required = self._settings.requires_signature(sender)
        certificate = self._certificates.get(sender)
        if parsed.style == "xml":
            assert parsed.xml_root is not None
            present = next(parsed.xml_root.iter(f"{_DS}Signature"), None) is not None
            where = _XML_PATH
        else:
            token = _header(headers, JWS_HEADER)
            present = token is not None
            where = JWS_HEADER
        if not present:
            if required:
                what = "an enveloped ds:Signature" if parsed.style == "xml" else f"a detached JWS in {JWS_HEADER}"
                return _refused(where, f"sender {sender} must sign its submissions: {what} is missing")
            return Verification()
        if certificate is None:
            if required:  # Settings refuses this combination; kept as a guard
                return _refused(where, f"no certificate is registered for sender {sender}")
            return Verification()  # cannot be checked; the sender need not sign (see the module docstring)
        now = datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return _refused(
                where,
                f"the certificate registered for sender {sender} is valid from "
                f"{certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}, not now",
            )
        if parsed.style == "xml":
            assert parsed.xml_root is not None
            return _verify_xml(sender, parsed.xml_root, certificate)
        assert token is not None
        return _verify_jws(sender, body, token, certificate, parsed)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


# ---------------------------------------------------------------- XML


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else str(element.tag)


def _path(element: etree._Element) -> str:
    steps = [_local(node) for node in (element, *element.iterancestors())]
    return "/" + "/".join(reversed(steps))


def _element_children(element: etree._Element) -> list[etree._Element]:
    """Child elements; comments are skipped (c14n drops them), any other node counts."""
    return [child for child in element if not isinstance(child, etree._Comment)]


def _describe(node: etree._Element) -> str:
    if isinstance(node, etree._ProcessingInstruction):
        return "a processing instruction"
    tag = str(node.tag)
    return _local(node) if tag.startswith(_DS) else tag


def _only_children(element: etree._Element, names: Sequence[str]) -> str | None:
    """A problem unless ``element``'s children are exactly the ds elements ``names``, in order."""
    found = [_describe(child) for child in _element_children(element)]
    if found != list(names):
        return f"{_path(element)} must hold exactly ds:{', ds:'.join(names)}; it holds {', '.join(found) or 'nothing'}"
    if any(text and text.strip() for text in (element.text, *(child.tail for child in element))):
        return f"{_path(element)} carries text beside its elements"
    return None


def _strict_base64(text: str | None) -> bytes | None:
    """Standard base64 (line breaks allowed), in its one canonical spelling; None otherwise."""
    compact = "".join((text or "").split())
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if base64.b64encode(decoded).decode("ascii") == compact and decoded else None


def _xml_structure_problems(root: etree._Element, certificate: x509.Certificate) -> list[str]:
    """Everything outside the contract's profile; each could put unsigned data where a reader looks."""
    problems: list[str] = []
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if isinstance(sibling, etree._ProcessingInstruction):
            problems.append("a processing instruction outside Submission is not covered by the signature")
    signatures = list(root.iter(f"{_DS}Signature"))
    if len(signatures) != 1:
        problems.append(f"exactly one ds:Signature is allowed; the document has {len(signatures)}")
    ids: dict[str, int] = {}
    for element in root.iter():
        if isinstance(element.tag, str):
            for name, value in element.attrib.items():
                if name in _ID_ATTRIBUTES:
                    ids[str(value)] = ids.get(str(value), 0) + 1
    problems.extend(f"the id {value!r} is used {count} times" for value, count in sorted(ids.items()) if count > 1)
    if not signatures:
        return problems
    signature = signatures[0]
    parent = signature.getparent()
    if parent is not root:
        where = "at the top" if parent is None else f"inside {_path(parent)}"
        problems.append(f"ds:Signature must be the last child of Submission, not {where}")
        return problems
    if signature.getnext() is not None or (signature.tail and signature.tail.strip()):
        problems.append("ds:Signature must be the last child of Submission; something follows it")
    structure = [
        _only_children(signature, ("SignedInfo", "SignatureValue", "KeyInfo")),
    ]
    problems.extend(problem for problem in structure if problem)
    if problems:
        return problems
    signed_info, signature_value, key_info = _element_children(signature)
    problems.extend(_signed_info_problems(signed_info, certificate))
    if _strict_base64(signature_value.text) is None:
        problems.append("ds:SignatureValue is not base64")
    problem = _only_children(key_info, ("X509Data",)) or _only_children(key_info[0], ("X509Certificate",))
    if problem:
        problems.append(problem)
    else:
        der = _strict_base64(key_info[0][0].text)
        if der != certificate.public_bytes(serialization.Encoding.DER):
            problems.append("the certificate in ds:KeyInfo is not the one registered for this sender")
    return problems


def _signed_info_problems(signed_info: etree._Element, certificate: x509.Certificate) -> list[str]:
    problem = _only_children(signed_info, ("CanonicalizationMethod", "SignatureMethod", "Reference"))
    if problem:
        return [problem]
    c14n, method, reference = _element_children(signed_info)
    problems: list[str] = []
    if c14n.get("Algorithm") != EXCLUSIVE_C14N or len(c14n):
        problems.append(f"ds:CanonicalizationMethod must be exclusive c14n ({EXCLUSIVE_C14N}) without options")
    key_type = XML_SIGNATURE_METHODS.get(method.get("Algorithm") or "")
    if key_type is None:
        problems.append("ds:SignatureMethod must be RSA-SHA256 or ECDSA-SHA256")
    elif not isinstance(certificate.public_key(), key_type):
        problems.append("ds:SignatureMethod does not match the key type of the registered certificate")
    if {str(name): str(value) for name, value in reference.attrib.items()} != {"URI": ""}:
        problems.append('the one ds:Reference must be URI="" (the whole document) and nothing else')
    problem = _only_children(reference, ("Transforms", "DigestMethod", "DigestValue"))
    if problem:
        return [*problems, problem]
    transforms, digest_method, _digest_value = _element_children(reference)
    problem = _only_children(transforms, ("Transform", "Transform"))
    algorithms = [] if problem else [(t.get("Algorithm"), len(t)) for t in _element_children(transforms)]
    if problem or algorithms != [(ENVELOPED_SIGNATURE, 0), (EXCLUSIVE_C14N, 0)]:
        problems.append("the ds:Reference transforms must be enveloped-signature, then exclusive c14n")
    if digest_method.get("Algorithm") != SHA256_DIGEST:
        problems.append("ds:DigestMethod must be SHA-256")
    return problems


def _verify_xml(sender: str, root: etree._Element, certificate: x509.Certificate) -> Verification:
    problems = _xml_structure_problems(root, certificate)
    if problems:
        return Verification(tuple(ErrorDetail(SIGNATURE_INVALID, _XML_PATH, problem) for problem in problems))
    try:
        result: Any = XMLVerifier().verify(root, x509_cert=certificate, expect_config=_XML_PROFILE)
    except Exception as error:  # signxml, cryptography and lxml each have their own; all mean "not valid"
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        return _refused(_XML_PATH, f"the signature does not verify with the certificate of sender {sender}: {reason}")
    if not isinstance(result, VerifyResult) or result.signed_xml is None or result.signed_xml.tag != root.tag:
        return _refused(_XML_PATH, "the signature does not cover the Submission element")
    return Verification(signed=ParsedBody("xml", xml_root=result.signed_xml))


# ---------------------------------------------------------------- JSON


def _b64url_decode(text: str) -> bytes | None:
    """Unpadded base64url in its one canonical spelling (RFC 7515 §2); None otherwise."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return decoded if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") == text else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate header parameter {key!r}")
        result[key] = value
    return result


def _verify_jws(
    sender: str, body: bytes, token: str, certificate: x509.Certificate, parsed: ParsedBody
) -> Verification:
    parts = token.strip().split(".")
    if len(parts) != 3:
        return _refused(JWS_HEADER, "not a JWS in compact form (header..signature)")
    protected, payload, signature_text = parts
    if payload:
        return _refused(JWS_HEADER, "the JWS must be detached: its payload part must be empty (the body is signed)")
    header_bytes = _b64url_decode(protected)
    if header_bytes is None:
        return _refused(JWS_HEADER, "the JWS protected header is not unpadded base64url")
    try:
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_unique_members)
    except (UnicodeDecodeError, ValueError) as error:
        return _refused(JWS_HEADER, f"the JWS protected header is not a JSON object: {error}")
    if not isinstance(header, dict):
        return _refused(JWS_HEADER, "the JWS protected header is not a JSON object")
    algorithm = header.get("alg")
    if algorithm not in JWS_ALGORITHMS:
        return _refused(JWS_HEADER, f"JWS alg {algorithm!r} is not accepted: RS256 or ES256 only")
    for unsupported in ("crit", "b64"):
        if unsupported in header:
            return _refused(JWS_HEADER, f"the JWS header parameter {unsupported!r} is not supported")
    if header.get("kid") != certificate_thumbprint(certificate):
        return _refused(
            JWS_HEADER, f"JWS kid is not the SHA-256 thumbprint of the certificate registered for sender {sender}"
        )
    signature = _b64url_decode(signature_text)
    if not signature:
        return _refused(JWS_HEADER, "the JWS signature is missing or not unpadded base64url")
    signing_input = f"{protected}.{_b64url(body)}".encode("ascii")
    key = certificate.public_key()
    try:
        if algorithm == "RS256":
            if not isinstance(key, rsa.RSAPublicKey):
                return _refused(JWS_HEADER, "RS256 does not match the registered certificate's key (not RSA)")
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                return _refused(JWS_HEADER, "ES256 does not match the registered certificate's key (not EC P-256)")
            if len(signature) != 64:
                return _refused(JWS_HEADER, "an ES256 signature is 64 bytes (R || S)")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return _refused(JWS_HEADER, f"the JWS does not verify over the body with the certificate of sender {sender}")
    return Verification(signed=parsed)  # the whole body is what was signed
