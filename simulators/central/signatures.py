"""Where signature verification plugs into the central sandbox (central-api.md, "Signatures").

Not enforced yet: the sandbox keeps the per-sender ``signature_required`` setting and calls the
verifier at the right moment (after the schema check, before the business rules), but the default
verifier accepts everything. A real verifier checks the enveloped XML Signature against the
sender's pinned certificate (and then rules must read only the signed element), or the detached JWS
in the ``JWS-Signature`` header over the exact body bytes, and returns SIGNATURE_INVALID details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from simulators.central.document import ParsedBody
from simulators.central.errors import ErrorDetail


class SignatureVerifier(Protocol):
    """Checks a submission's signature; returns the problems (empty when the signature is good)."""

    def verify(
        self, *, sender: str, body: bytes, parsed: ParsedBody, headers: Mapping[str, str]
    ) -> Sequence[ErrorDetail]: ...


class UnenforcedSignatureVerifier:
    """Placeholder until signatures are implemented: accepts every submission."""

    def verify(
        self, *, sender: str, body: bytes, parsed: ParsedBody, headers: Mapping[str, str]
    ) -> Sequence[ErrorDetail]:
        return ()
