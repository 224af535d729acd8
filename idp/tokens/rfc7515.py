"""JWS compact serialization for everything Hoviyat signs (RFC 7515 §7.1).

Every access token, ID token and refresh of a grant is signed here, and so
are attestations and their status lists (:mod:`idp.attestations.signing`).
joserfc's general-purpose path (header registry checks, claim conversion,
key lookups) cost more than the signature itself (about 1.5x per token,
measured). A :class:`CompactSigner` is bound to one private key and
algorithm, encodes each protected header once, and signs with
``cryptography`` directly. Verification stays with joserfc
(:meth:`idp.tokens.keyring.KeyRing.verify`); the tests check that both
joserfc and python-jose accept what this module signs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# RFC 7518 §3.5: PS256's salt is as long as the hash output.
_PSS_SHA256 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_PKCS1 = padding.PKCS1v15()


def b64url(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class CompactSigner:
    """Signs JWTs with one key: ``ES256`` (RFC 7518 §3.4), ``RS256`` (§3.3) or ``PS256`` (§3.5).

    The protected header is ``alg``, ``typ``, then ``kid`` (when given) and any
    ``extra_header`` members, such as an ``x5c`` chain (§4.1.6).
    """

    kid: str | None
    alg: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    extra_header: Mapping[str, Any] = field(default_factory=dict, compare=False)
    _headers: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg == "ES256":
            if not (
                isinstance(self.private_key, ec.EllipticCurvePrivateKey)
                and isinstance(self.private_key.curve, ec.SECP256R1)
            ):
                raise ValueError("ES256 needs a P-256 key")
        elif self.alg in ("RS256", "PS256"):
            if not isinstance(self.private_key, rsa.RSAPrivateKey):
                raise ValueError(f"{self.alg} needs an RSA key")
        else:
            raise ValueError(f"unsupported JWS algorithm {self.alg!r}")

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        header = self._headers.get(typ)
        if header is None:
            # One encoding per (key, typ): the header never changes.
            members: dict[str, Any] = {"alg": self.alg, "typ": typ}
            if self.kid is not None:
                members["kid"] = self.kid
            header = b64url(orjson.dumps({**members, **self.extra_header}))
            self._headers[typ] = header
        signing_input = header + b"." + b64url(orjson.dumps(claims))
        return (signing_input + b"." + b64url(self._signature(signing_input))).decode("ascii")

    def _signature(self, signing_input: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # RFC 7518 §3.4: R and S as fixed-length big-endian octets, not DER.
            r, s = decode_dss_signature(key.sign(signing_input, _ECDSA_SHA256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        scheme = _PSS_SHA256 if self.alg == "PS256" else _PKCS1
        return key.sign(signing_input, scheme, hashes.SHA256())
