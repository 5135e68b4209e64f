"""The province's signing key and certificate, as the configuration holds them once loaded
(`baocao.run.config`); `baocao.transforms.signing` signs with them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JwsAlgorithm = Literal["RS256", "ES256"]


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    """base64url (no padding) of SHA-256 over the DER certificate: the JWS ``kid``."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """The province's signing key and its certificate; ``repr`` shows the certificate, never the key."""

    private_key: PrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @property
    def algorithm(self) -> JwsAlgorithm:
        return "RS256" if isinstance(self.private_key, rsa.RSAPrivateKey) else "ES256"

    @property
    def kid(self) -> str:
        return certificate_thumbprint(self.certificate)

    def __repr__(self) -> str:
        return f"SigningKey({self.algorithm}, subject={self.certificate.subject.rfc4514_string()!r}, kid={self.kid})"
