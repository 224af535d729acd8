"""The attestation signer: an ES256 key and its certificate chain from the Hoviyat CA.

Where the key comes from (the CA issuing under its token/attestation signing
profile, or a test PKI) is the caller's business; this module only checks that
the key matches the leaf and signs compact JWS with ``x5c`` in the header,
through the one JWS signer of Hoviyat (:mod:`idp.tokens.rfc7515`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from idp.attestations.x5c import encode_chain
from idp.tokens.rfc7515 import CompactSigner

ALGORITHM = "ES256"


@dataclass(frozen=True)
class AttestationSigner:
    """``chain`` is leaf first, then the issuing CA(s); the root is left out (RFC 7515 §4.1.6)."""

    private_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]
    jwk: ECKey = field(init=False, repr=False, compare=False)
    x5c: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _jws: CompactSigner = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.chain:
            raise ValueError("the signer needs at least its own certificate")
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise ValueError(f"{ALGORITHM} needs a P-256 key, got {self.private_key.curve.name}")
        if self.chain[0].public_key() != self.private_key.public_key():
            raise ValueError("the first certificate of the chain is not for this private key")
        object.__setattr__(self, "jwk", ECKey.import_key(self.private_key))
        object.__setattr__(self, "x5c", tuple(encode_chain(self.chain)))
        jws = CompactSigner(None, ALGORITHM, self.private_key, {"x5c": list(self.x5c)})
        object.__setattr__(self, "_jws", jws)

    @classmethod
    def from_pem_files(cls, key_path: Path, chain_path: Path) -> AttestationSigner:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} does not hold an EC private key")
        return cls(key, tuple(x509.load_pem_x509_certificates(chain_path.read_bytes())))

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def sign(self, typ: str, payload: Mapping[str, Any]) -> str:
        """A compact JWS of ``payload`` with ``typ`` and the chain in its header."""
        return self._jws.sign(payload, typ=typ)
