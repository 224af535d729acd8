"""ID tokens (OIDC Core §2, §3.1.3.6): who logged in, how, when, for which client.

Signed with the client's registered algorithm (ES256 by default; RS256 and
PS256 per client) by the token keyring, the only holder of signing keys.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from idp.tokens import SIGNING_ALGORITHMS, KeyRing

ID_TOKEN_LIFETIME = 300


def token_hash(value: str) -> str:
    """§3.1.3.6 at_hash: left half of the SHA-256 digest (every algorithm here uses SHA-256)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def id_token_claims(
    *,
    issuer: str,
    client_id: str,
    subject: str,
    auth_time: datetime,
    acr: str,
    amr: list[str],
    nonce: str | None,
    session_id: str | None,
    access_token: str | None,
    identity: Mapping[str, Any],
    now: int | None = None,
) -> dict[str, Any]:
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = dict(identity)
    claims.update(
        {
            "iss": issuer,
            "sub": subject,
            "aud": client_id,
            "iat": issued,
            "exp": issued + ID_TOKEN_LIFETIME,
            "auth_time": int(auth_time.timestamp()),
            "acr": acr,
            "amr": list(amr),
        }
    )
    if nonce is not None:
        claims["nonce"] = nonce
    if session_id is not None:
        claims["sid"] = session_id
    if access_token is not None:
        claims["at_hash"] = token_hash(access_token)
    return claims


def sign_id_token(keyring: KeyRing, claims: Mapping[str, Any], alg: str, typ: str = "JWT") -> str:
    if alg not in SIGNING_ALGORITHMS:
        raise ValueError(f"id_token_signed_response_alg {alg!r} is not one of {SIGNING_ALGORITHMS}")
    return keyring.sign(claims, alg=alg, typ=typ)
