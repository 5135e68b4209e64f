"""Signature verification at the central sandbox, over real HTTP on loopback (central-api.md, "Signatures").

The sandbox pins one certificate per sender and requires signatures from SENDER; OTHER_SENDER has a
pinned certificate but need not sign. Good XML and JSON are accepted; every attack is refused with
422 SIGNATURE_INVALID; a one-byte change at every byte position of a signed document is refused.
Everything runs once with RSA keys and once with ECDSA P-256 keys.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from baocao.simulators.central import RunningSandbox, start_in_thread
from baocao.transforms import signing
from tests.simulators.central_support import (
    JSON,
    OTHER_SENDER,
    OTHER_TOKEN,
    SENDER,
    TOKEN,
    XML,
    example,
    settings_for,
    to_bytes,
    tthc_document,
)
from tests.transforms.test_signing import Identity, KeyKind, make_identity

DS_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"
DS = "{" + DS_NAMESPACE + "}"
NS = "{urn:x-cchc:submission:1}"
ACCEPTED = (200, 201)


@dataclass
class Central:
    sandbox: RunningSandbox
    kind: KeyKind
    sender: Identity  # pinned for SENDER, who must sign
    other: Identity  # pinned for OTHER_SENDER, who need not sign
    session: requests.Session

    def post(
        self,
        body: bytes,
        content_type: str = XML,
        jws: str | None = None,
        token: str = TOKEN,
    ) -> requests.Response:
        headers = {
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": content_type,
            "Authorization": f"Bearer {token}",
        }
        if jws is not None:
            headers["JWS-Signature"] = jws
        return self.session.post(self.sandbox.base_url + "/submissions", data=body, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=["rsa", "ec"])
def central(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    kind: KeyKind = request.param
    sender, other = make_identity(kind, "H99 signing"), make_identity(kind, "H01 signing")
    settings = settings_for(
        f"sqlite:///{tmp_path_factory.mktemp('central') / 'central.sqlite3'}",
        signature_required={SENDER: True},
        certificates={SENDER: sender.cert_pem, OTHER_SENDER: other.cert_pem},
    )
    with start_in_thread(settings) as sandbox, requests.Session() as session:
        yield Central(sandbox, kind, sender, other, session)


def _refused_as_signature_invalid(response: requests.Response) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "SIGNATURE_INVALID", body
    assert body["errors"] and all(error["code"] == "SIGNATURE_INVALID" for error in body["errors"])
    return [str(error["message"]) for error in body["errors"]]


def _xml(root: etree._Element) -> bytes:
    # The tree, not the element: processing instructions beside the root are serialised too.
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed_xml(identity: Identity, body: bytes | None = None) -> bytes:
    return signing.sign_xml(body or example("tthc-results.xml"), identity.signing_key)


def _json_for(sender: str) -> bytes:
    document = tthc_document()
    document["header"]["sender"]["code"] = sender
    return to_bytes(document)


# ---------------------------------------------------------------- the good path


def test_signed_xml_and_json_are_accepted(central: Central) -> None:
    xml = _signed_xml(central.sender)
    accepted_xml = central.post(xml)
    assert accepted_xml.status_code in ACCEPTED, accepted_xml.text
    assert accepted_xml.json()["sha256"] == hashlib.sha256(xml).hexdigest()
    body = example("tthc-results.json")
    jws = signing.sign_json(body, central.sender.signing_key)
    accepted_json = central.post(body, JSON, jws)
    assert accepted_json.status_code in ACCEPTED, accepted_json.text
    # The same report: the JSON form is the XML's duplicate, which proves both were read the same way.
    assert accepted_json.json()["receipt_id"] == accepted_xml.json()["receipt_id"]
    print(
        f"\n{central.kind}: signed XML ({len(xml)} bytes) and JSON ({len(body)} bytes + {len(jws)}-char JWS) accepted"
    )


def test_comments_inside_the_signed_document_are_outside_what_is_read(central: Central) -> None:
    # Exclusive c14n without comments does not sign comments, and signxml's signed_xml drops them:
    # the central accepts the document and reads what was signed.
    signed = _signed_xml(central.sender).replace(b"<Body>", b"<Body><!-- not signed, not read -->", 1)
    assert central.post(signed).status_code in ACCEPTED


# ---------------------------------------------------------------- XML attacks


def _moved(signed: bytes, where: str) -> bytes:
    root = etree.fromstring(signed)
    signature = root[-1]
    if where == "first":
        root.insert(0, signature)
    elif where == "header":
        root.find(f"{NS}Header").append(signature)  # type: ignore[union-attr]
    else:
        root.find(f"{NS}Body/{NS}TthcResults").append(signature)  # type: ignore[union-attr]
    return _xml(root)


def _forged_body(root: etree._Element) -> etree._Element:
    forged = copy.deepcopy(root.find(f"{NS}Body"))
    assert forged is not None
    total = forged.find(f"{NS}TthcResults/{NS}Total")
    assert total is not None
    total.set("receivedTotal", "999")
    return forged


def _attack(signed: bytes, attack: str) -> bytes:
    root = etree.fromstring(signed)
    signature = root[-1]
    if attack == "second signature after the first":
        root.append(copy.deepcopy(signature))
    elif attack == "second signature inside a ds:Object":
        holder = etree.SubElement(signature, f"{DS}Object")
        holder.append(copy.deepcopy(signature))
    elif attack == "second signature inside Header":
        root.find(f"{NS}Header").append(copy.deepcopy(signature))  # type: ignore[union-attr]
    elif attack == "unsigned Body after the signature":
        root.append(_forged_body(root))
    elif attack == "unsigned Body in a ds:Object":
        # The enveloped transform removes the whole signature, so the digest still matches: only the
        # profile check (no ds:Object) and reading signed_xml keep this data out.
        etree.SubElement(signature, f"{DS}Object").append(_forged_body(root))
    elif attack == "unsigned element in KeyInfo":
        etree.SubElement(signature.find(f"{DS}KeyInfo"), f"{DS}KeyName").text = "forged"  # type: ignore[arg-type]
    elif attack == "processing instruction before the root":
        root.addprevious(etree.ProcessingInstruction("xml-stylesheet", 'href="forged.xsl"'))
    else:
        raise AssertionError(attack)
    return _xml(root)


@pytest.mark.parametrize("where", ["first", "header", "body"])
def test_a_relocated_signature_is_refused(central: Central, where: str) -> None:
    messages = _refused_as_signature_invalid(central.post(_moved(_signed_xml(central.sender), where)))
    assert any("last child of Submission" in message for message in messages)


@pytest.mark.parametrize(
    "attack",
    [
        "second signature after the first",
        "second signature inside a ds:Object",
        "second signature inside Header",
        "unsigned Body after the signature",
        "unsigned Body in a ds:Object",
        "unsigned element in KeyInfo",
        "processing instruction before the root",
    ],
)
def test_wrapping_variants_are_refused(central: Central, attack: str) -> None:
    _refused_as_signature_invalid(central.post(_attack(_signed_xml(central.sender), attack)))


def test_duplicate_ids_signature_wrapping_is_refused(central: Central) -> None:
    # The classic wrapping: a signature over "#doc" by the real key, the signed original hidden in a
    # ds:Object, and a forged root carrying the same id in its place.
    original = etree.fromstring(example("tthc-results.xml"))
    original.set("Id", "doc")
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256 if central.kind == "rsa" else SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(original, key=central.sender.key, cert=[central.sender.certificate])
    signature = signed[-1]
    signed.remove(signature)
    forged = copy.deepcopy(signed)
    forged.replace(forged.find(f"{NS}Body"), _forged_body(forged))  # type: ignore[arg-type]
    etree.SubElement(signature, f"{DS}Object").append(signed)
    forged.append(signature)
    messages = _refused_as_signature_invalid(central.post(_xml(forged)))
    assert any("'doc' is used 2 times" in message for message in messages)
    assert any("must hold exactly ds:SignedInfo, ds:SignatureValue, ds:KeyInfo" in message for message in messages)
    # Without the ds:Object (the original left out): the reference itself is outside the profile.
    signature.remove(signature[-1])
    messages = _refused_as_signature_invalid(central.post(_xml(forged)))
    assert any('URI=""' in message for message in messages)


def test_a_missing_signature_is_refused_when_required(central: Central) -> None:
    messages = _refused_as_signature_invalid(central.post(example("tthc-results.xml")))
    assert messages == [f"sender {SENDER} must sign its submissions: an enveloped ds:Signature is missing"]
    messages = _refused_as_signature_invalid(central.post(example("tthc-results.json"), JSON))
    assert "JWS-Signature is missing" in messages[0]


def test_another_senders_certificate_or_key_is_refused(central: Central) -> None:
    # Signed by OTHER_SENDER's key with its own (pinned, but not for SENDER) certificate.
    messages = _refused_as_signature_invalid(central.post(_signed_xml(central.other)))
    assert messages == ["the certificate in ds:KeyInfo is not the one registered for this sender"]
    # Signed by another key, with SENDER's own certificate put in KeyInfo.
    root = etree.fromstring(_signed_xml(central.other))
    certificate = root[-1].find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert certificate is not None
    certificate.text = "".join(central.sender.cert_pem.splitlines()[1:-1])
    messages = _refused_as_signature_invalid(central.post(_xml(root)))
    assert "does not verify with the certificate of sender" in messages[0]
    # JSON: another key and its kid, then another key claiming SENDER's kid.
    body = example("tthc-results.json")
    _refused_as_signature_invalid(central.post(body, JSON, signing.sign_json(body, central.other.signing_key)))
    protected = _b64url(
        json.dumps({"alg": central.sender.signing_key.algorithm, "kid": central.sender.signing_key.kid}).encode()
    )
    foreign = signing.sign_json(body, central.other.signing_key).split(".")[2]
    _refused_as_signature_invalid(central.post(body, JSON, f"{protected}..{foreign}"))


# ---------------------------------------------------------------- JWS attacks


def _jws_header(**members: object) -> str:
    return _b64url(json.dumps(members).encode())


def test_jws_alg_none_hs256_and_other_tricks_are_refused(central: Central) -> None:
    body = example("tthc-results.json")
    kid, algorithm = central.sender.signing_key.kid, central.sender.signing_key.algorithm
    good = signing.sign_json(body, central.sender.signing_key)
    protected, _, signature = good.split(".")
    none = _jws_header(alg="none", kid=kid)
    # HS256 keyed with the public certificate: the old key-confusion attack.
    hs256 = _jws_header(alg="HS256", kid=kid)
    mac = hmac.new(central.sender.cert_pem.encode(), f"{hs256}.{_b64url(body)}".encode(), hashlib.sha256).digest()
    crit = _jws_header(alg=algorithm, kid=kid, crit=["exp"], exp=1)
    cases = {
        "alg none, no signature": f"{none}..",
        "alg none, a signature": f"{none}..{signature}",
        "HS256 with the certificate as secret": f"{hs256}..{_b64url(mac)}",
        "kid of another certificate": f"{_jws_header(alg=algorithm, kid=central.other.signing_key.kid)}..{signature}",
        "attached payload": f"{protected}.{_b64url(body)}.{signature}",
        "crit header": f"{crit}..{signature}",
        "padded base64": f"{protected}..{signature}==",
        "not compact": "garbage",
        "signature of another body": signing.sign_json(body.replace(b"120", b"121", 1), central.sender.signing_key),
    }
    for case, jws in cases.items():
        messages = _refused_as_signature_invalid(central.post(body, JSON, jws))
        print(f"\n{case}: {messages[0]}", end="")
    assert "alg 'none' is not accepted" in _refused_as_signature_invalid(central.post(body, JSON, f"{none}.."))[0]
    print(f"\n{central.kind}: {len(cases)} JWS variants refused with SIGNATURE_INVALID")


# ---------------------------------------------------------------- senders that need not sign


def test_a_sender_that_need_not_sign_is_still_checked_when_it_signs(central: Central) -> None:
    body = _json_for(OTHER_SENDER)
    unsigned = central.post(body, JSON, token=OTHER_TOKEN)
    assert unsigned.status_code in ACCEPTED, unsigned.text
    good = central.post(body, JSON, signing.sign_json(body, central.other.signing_key), token=OTHER_TOKEN)
    assert good.status_code in ACCEPTED, good.text
    wrong_key = signing.sign_json(body, central.sender.signing_key)
    _refused_as_signature_invalid(central.post(body, JSON, wrong_key, token=OTHER_TOKEN))


# ---------------------------------------------------------------- one byte changed, at every position


def _regions(signed: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) byte ranges of a signed XML document."""
    root_start = signed.index(b"<Submission")
    signature_start = signed.index(b"<ds:Signature")
    signature_end = signed.index(b"</ds:Signature>") + len(b"</ds:Signature>")
    signed_info = (signed.index(b"<ds:SignedInfo>"), signed.index(b"</ds:SignedInfo>") + len(b"</ds:SignedInfo>"))
    return [
        ("XML declaration", 0, root_start),
        ("signed content", root_start, signature_start),
        ("ds:Signature start tag", signature_start, signed_info[0]),
        ("ds:SignedInfo", *signed_info),
        ("SignatureValue and KeyInfo", signed_info[1], signature_end),
        ("signed content (root end tag)", signature_end, len(signed)),
    ]


def _sweep(
    central: Central, body: bytes, positions: range, content_type: str, jws: str | None
) -> tuple[Counter[str], list[int]]:
    """POST ``body`` with one byte flipped (XOR 0x01) at each position: outcomes by code, accepted positions."""
    outcomes: Counter[str] = Counter()
    accepted: list[int] = []
    for position in positions:
        changed = bytearray(body)
        changed[position] ^= 0x01
        response = central.post(bytes(changed), content_type, jws)
        if response.status_code in ACCEPTED:
            accepted.append(position)
        outcomes["accepted" if response.status_code in ACCEPTED else response.json()["error"]] += 1
    return outcomes, accepted


@pytest.mark.slow  # one POST per byte: about 4,000 per key type
def test_a_one_byte_change_anywhere_in_a_signed_xml_document_is_refused(central: Central) -> None:
    """Every byte of the signed document is flipped in turn (bit 0, so most bytes stay printable).

    The only changes that may be accepted are in the XML declaration: it is not part of the XPath
    data model that canonicalisation serialises, so c14n (and the signature) legitimately ignores
    it, and the central reads nothing from it (it parses UTF-8 whatever the declaration says).
    Changes elsewhere break well-formedness (400 MALFORMED), name another sender (403), or break the
    digest or the signature (422 SIGNATURE_INVALID); none may be accepted.
    """
    signed = _signed_xml(central.sender)
    declaration = signed[: signed.index(b"<Submission")]
    # Where the declaration's version and encoding values are: the only bytes whose change may pass.
    ignorable = {
        position
        for value in (b"1.0", b"UTF-8")
        for position in range(declaration.index(value), declaration.index(value) + len(value))
    }
    total: Counter[str] = Counter()
    for name, start, end in _regions(signed):
        outcomes, accepted = _sweep(central, signed, range(start, end), XML, None)
        total.update(outcomes)
        print(f"\n{central.kind} XML {name}: {end - start} positions tried, {dict(outcomes)}", end="")
        if name == "XML declaration":
            # A flipped "xml" target turns the declaration into a processing instruction, refused as
            # unsigned; a changed version ("1.1") or encoding name ("UTF-9") still parses (as UTF-8,
            # which the contract imposes) and c14n does not serialise the declaration.
            flipped = [bytearray(declaration) for _ in accepted]
            for text, position in zip(flipped, accepted, strict=True):
                text[position] ^= 0x01
            print(f"; accepted: {[text.decode().strip() for text in flipped]}", end="")
            assert set(accepted) <= ignorable
        else:
            assert "accepted" not in outcomes, name
            assert set(outcomes) <= {"SIGNATURE_INVALID", "MALFORMED", "SENDER_MISMATCH"}, name
    tried = sum(total.values())
    print(f"\n{central.kind} XML: {tried} positions tried, {tried - total['accepted']} refused", end="")
    assert tried == len(signed)


@pytest.mark.slow  # one POST per byte: about 2,600 per key type
def test_a_one_byte_change_anywhere_in_a_signed_json_body_or_its_jws_is_refused(central: Central) -> None:
    body = example("tthc-results.json")
    jws = signing.sign_json(body, central.sender.signing_key)
    in_body, _ = _sweep(central, body, range(len(body)), JSON, jws)
    print(f"\n{central.kind} JSON body: {len(body)} positions tried, {dict(in_body)}", end="")
    assert "accepted" not in in_body and sum(in_body.values()) == len(body)
    in_jws: Counter[str] = Counter()
    for position in range(len(jws)):
        changed = bytearray(jws.encode("ascii"))
        changed[position] ^= 0x01
        response = central.post(body, JSON, changed.decode("ascii"))
        in_jws["accepted" if response.status_code in ACCEPTED else response.json()["error"]] += 1
    print(f"\n{central.kind} JWS-Signature: {len(jws)} positions tried, {dict(in_jws)}", end="")
    assert in_jws == Counter({"SIGNATURE_INVALID": len(jws)})


def test_the_pinned_certificate_is_in_the_settings_json_for_workers(central: Central, tmp_path: Path) -> None:
    from baocao.simulators.central import Settings

    settings = settings_for(
        f"sqlite:///{tmp_path / 'c.db'}",
        signature_required={SENDER: True},
        certificates={SENDER: central.sender.cert_pem},
    )
    again = Settings.from_json(settings.to_json())
    assert again.certificates == settings.certificates and again.requires_signature(SENDER)
    certificate = again.certificate_for(SENDER)
    assert certificate is not None
    assert certificate.public_bytes(serialization.Encoding.PEM).decode() == central.sender.cert_pem
    assert central.sender.cert_pem not in repr(again)
    with pytest.raises(ValueError, match="no registered certificate"):
        Settings(signature_required={OTHER_SENDER: True})


def test_a_pinned_certificate_out_of_its_validity_is_refused() -> None:
    from datetime import UTC, datetime, timedelta

    from baocao.simulators.central import Settings
    from baocao.simulators.central.document import parse_body
    from baocao.simulators.central.signatures import PinnedCertificateVerifier

    expired = make_identity("ec", valid_from=datetime.now(UTC) - timedelta(days=60), days=30)
    verifier = PinnedCertificateVerifier(
        Settings(tokens={TOKEN: SENDER}, signature_required={SENDER: True}, certificates={SENDER: expired.cert_pem})
    )
    body = example("tthc-results.json")
    jws = signing.sign_json(body, expired.signing_key)  # the key signs; the certificate has run out
    verification = verifier.verify(
        sender=SENDER, body=body, parsed=parse_body(body, "json"), headers={"JWS-Signature": jws}
    )
    assert [problem.message for problem in verification.problems][0].endswith("not now")
