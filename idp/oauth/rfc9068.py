"""JWT access tokens (RFC 9068).

Header ``typ: at+jwt`` (§2.1); claims ``iss``, ``exp``, ``aud``, ``sub``,
``client_id``, ``iat``, ``jti`` (§2.2) and ``scope`` (§2.2.3). Back-office tokens
carry the caller's service code and roles so the API can authorise without a
database read per request; a disabled client loses access when its short-lived
token expires.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from idp import randomness
from idp.tokens import KeyRing

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret


def api_audience(issuer: str) -> str:
    return issuer.rstrip("/") + "/v1"


def issue_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    client_id: str,
    subject: str,
    scope: Iterable[str],
    lifetime: int,
    extra_claims: dict[str, Any] | None = None,
    audience: str | None = None,
) -> str:
    """``audience``: the resource the token is for (RFC 8707); default Hoviyat's own API."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience or api_audience(issuer),
        "client_id": client_id,
        "iat": now,
        "exp": now + lifetime,
        "jti": randomness.token_urlsafe(16),
        "scope": " ".join(scope),
    }
    claims.update(extra_claims or {})
    return keyring.sign(claims, typ=ACCESS_TOKEN_TYPE)


def verify_access_token(
    keyring: KeyRing, token: str, *, issuer: str, any_audience: bool = False
) -> dict[str, Any]:
    """A token for Hoviyat's own API; with ``any_audience`` one for any resource this
    issuer serves (introspection and revocation answer for every resource server)."""
    return keyring.verify(
        token,
        typ=ACCESS_TOKEN_TYPE,
        issuer=issuer,
        audience=None if any_audience else api_audience(issuer),
    )
