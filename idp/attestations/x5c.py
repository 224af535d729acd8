"""The ``x5c`` JOSE header (RFC 7515 §4.1.6): the signer's chain, checked against a root.

The header carries the leaf first, then the issuing CA(s), as standard base64
DER. A receiver holds only the Hoviyat root: the chain is built and verified
with ``cryptography``'s ``x509.verification`` (signatures, validity,
basic constraints and key usage of the CAs), then the leaf must be an
end-entity allowed to sign (digitalSignature). Validated chains are cached by
their exact header value, so a verifier checks the two chain signatures once
per signer certificate, not once per attestation; a cache hit still re-checks
validity at the requested time.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from joserfc.jwk import ECKey

from idp.attestations.errors import AttestationInvalid


def encode_chain(chain: Sequence[x509.Certificate]) -> list[str]:
    """RFC 7515 §4.1.6: standard (not URL-safe) base64 of each DER certificate."""
    return [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for cert in chain
    ]


def decode_chain(x5c: object) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise AttestationInvalid("chain_missing", "the JOSE header has no x5c certificate chain")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except (ValueError, binascii.Error) as exc:
        raise AttestationInvalid(
            "chain_malformed", f"x5c holds a certificate that does not parse: {exc}"
        ) from exc


def load_roots(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file (one root or a bundle), or the one of a DER file."""
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        roots = x509.load_pem_x509_certificates(data)
    else:
        roots = [x509.load_der_x509_certificate(data)]
    if not roots:
        raise ValueError(f"{path} holds no certificate")
    return roots


@dataclass(frozen=True)
class _Validated:
    key: ECKey
    leaf: x509.Certificate
    not_before: datetime
    not_after: datetime


class ChainVerifier:
    """Resolves the signer key of an ``x5c`` header that chains to one of ``roots``."""

    def __init__(self, roots: Sequence[x509.Certificate], cache_size: int = 256) -> None:
        if not roots:
            raise ValueError("at least one root certificate is needed")
        self.roots = list(roots)
        self._store = verification.Store(self.roots)
        self._cache: OrderedDict[tuple[str, ...], _Validated] = OrderedDict()
        self._cache_size = cache_size

    def leaf_key(self, x5c: object, at: datetime) -> ECKey:
        return self.validate(x5c, at).key

    def leaf(self, x5c: object, at: datetime) -> x509.Certificate:
        return self.validate(x5c, at).leaf

    def validate(self, x5c: object, at: datetime) -> _Validated:
        cache_key = tuple(x5c) if isinstance(x5c, list) else None
        cached = self._cache.get(cache_key) if cache_key else None
        if cached is None:
            cached = self._validate(x5c, at)
            if cache_key:
                self._cache[cache_key] = cached
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        elif not cached.not_before <= at <= cached.not_after:
            # Rerun the full check for its message naming the certificate at fault.
            self._validate(x5c, at)
        return cached

    def _validate(self, x5c: object, at: datetime) -> _Validated:
        chain = decode_chain(x5c)
        for cert in chain:
            if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                raise AttestationInvalid(
                    "certificate_expired",
                    f"certificate {cert.subject.rfc4514_string()} is valid "
                    f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}",
                )
        leaf, intermediates = chain[0], chain[1:]
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(at)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                # The leaf is a document signer, not a TLS client: no SAN or EKU is
                # demanded of it here; its own key usage is checked below.
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, intermediates)
        except verification.VerificationError as exc:
            raise AttestationInvalid(
                "chain_untrusted", f"the x5c chain does not lead to the trusted root: {exc}"
            ) from exc
        _check_signer(leaf)
        public_key = leaf.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise AttestationInvalid(
                "leaf_key", "the signer certificate's key is not P-256 (ES256)"
            )
        return _Validated(
            key=ECKey.import_key(public_key),
            leaf=leaf,
            not_before=max(c.not_valid_before_utc for c in verified.chain),
            not_after=min(c.not_valid_after_utc for c in verified.chain),
        )


def _check_signer(leaf: x509.Certificate) -> None:
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise AttestationInvalid("leaf_usage", "the signer certificate is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise AttestationInvalid("leaf_usage", "the signer certificate lacks digitalSignature")


def now_utc() -> datetime:
    return datetime.now(UTC)
