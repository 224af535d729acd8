"""The UserInfo endpoint (OIDC Core §5.3): claims for a valid access token, JSON or signed JWT.

The access token must be one issued by the OIDC grants (it names its grant
with ``gid``); a revoked grant answers 401 at once, though the token's own
``exp`` has not passed. A client asking ``Accept: application/jwt`` gets the
same claims signed with its ID token algorithm (§5.3.2), with ``iss`` and
``aud`` added.
"""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session

from idp.context import Hoviyat
from idp.oidc.id_token import sign_id_token
from idp.oidc.identity import identity_or
from idp.problems import Problem, forbidden, service_unavailable, unauthorized
from idp.storage.clients import client_row
from idp.storage.grants import load_grant
from idp.storage.models import Client

JWT_MEDIA_TYPE = "application/jwt"


def userinfo_claims(
    hoviyat: Hoviyat, session: Session, token: dict[str, Any]
) -> tuple[Client, dict]:
    """The claims for a verified access token (``idp.http.auth.access_token_claims``,
    Bearer or DPoP-bound)."""
    grant_id = token.get("gid")
    if not isinstance(grant_id, str):
        raise unauthorized("this access token was not issued by an OpenID Connect login")
    if "openid" not in str(token.get("scope", "")).split():
        raise Problem(
            403,
            "insufficient-scope",
            "Forbidden",
            "the access token lacks the openid scope",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'},
        )
    grant = load_grant(session, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise unauthorized("the access token's grant was revoked")
    client = client_row(session, grant.client_id)
    if client is None or client.disabled:
        raise unauthorized("the client of this access token is disabled")
    identity = identity_or(
        hoviyat,
        client,
        grant,
        str(token["scope"]).split(),
        target="userinfo",
        refused=lambda reason: forbidden("identity-refused", reason),
        unavailable=lambda error: service_unavailable(
            f"the {error.registry} registry cannot answer now", error.retry_after
        ),
    )
    return client, identity.claims


def signed_userinfo(hoviyat: Hoviyat, client: Client, claims: dict[str, Any]) -> str:
    now = int(time.time())
    signed = {**claims, "iss": hoviyat.settings.issuer, "aud": client.client_id, "iat": now}
    return sign_id_token(hoviyat.keyring, signed, client.id_token_signed_response_alg)
