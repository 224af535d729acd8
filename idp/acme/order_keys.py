"""A public key's JWK thumbprint (RFC 7638), so an ACME account key can be compared with
the key of a CSR (finalize, §11.1) or of a certificate (revokeCert, §7.6)."""

from __future__ import annotations

import warnings
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey


def key_thumbprint(public_key: PublicKeyTypes) -> str | None:
    """base64url SHA-256 thumbprint of ``public_key`` as a JWK; None for a key JOSE cannot
    carry (such a key cannot be an account key either)."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a weak key is refused by the profile, not here
                return str(RSAKey.import_key(public_key).thumbprint())
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            return str(ECKey.import_key(public_key).thumbprint())
        if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            return str(OKPKey.import_key(public_key).thumbprint())
    except (JoseError, ValueError, TypeError):
        return None
    return None


def jwk_thumbprint(jwk: dict[str, Any]) -> str | None:
    """The thumbprint of a JWK as a JWS header carried it; None if it is not a public key."""
    try:
        return str(JWKRegistry.import_key(jwk).thumbprint())
    except (JoseError, ValueError, TypeError, KeyError):
        return None
