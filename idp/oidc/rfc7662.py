"""Token introspection (RFC 7662): is this token active, and what does it carry?

A client may introspect only tokens issued to itself (§4: the server must
guard against token scanning); any other token, and anything unknown,
expired, rotated or revoked, is simply ``{"active": false}`` (§2.2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth import rfc8705
from idp.oauth.rfc9068 import verify_access_token
from idp.oauth.rfc9449 import TOKEN_TYPE, bound_key
from idp.oidc.grants import digest
from idp.oidc.identity import subject_for
from idp.storage import grants as store
from idp.storage.models import Client
from idp.tokens import TokenError

INACTIVE: dict[str, Any] = {"active": False}
_ACCESS_TOKEN_MEMBERS = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "acr")


def _grant_live(session: Session, grant_id: Any) -> bool:
    if grant_id is None:
        return True
    grant = store.load_grant(session, grant_id)
    return grant is not None and grant.revoked_at is None


def _access_token(
    session: Session, hoviyat: Hoviyat, caller: Client, token: str
) -> dict[str, Any] | None:
    try:
        claims = verify_access_token(
            hoviyat.keyring, token, issuer=hoviyat.settings.issuer, any_audience=True
        )
    except TokenError:
        return None
    if claims.get("client_id") != caller.client_id or not _grant_live(session, claims.get("gid")):
        return INACTIVE
    # RFC 9449 §6.2: a DPoP-bound token says so, and names its key.
    jkt = bound_key(claims)
    body: dict[str, Any] = {"active": True, "token_type": "Bearer" if jkt is None else TOKEN_TYPE}
    body.update({name: claims[name] for name in _ACCESS_TOKEN_MEMBERS if name in claims})
    cnf = {"jkt": jkt} if jkt is not None else {}
    cnf.update(rfc8705.introspection_members(claims))  # RFC 8705 §3.2
    if cnf:
        body["cnf"] = cnf
    return body


def _refresh_token(
    session: Session, hoviyat: Hoviyat, caller: Client, token: str
) -> dict[str, Any] | None:
    row = store.refresh_token(session, digest(token))
    if row is None:
        return None
    if row.client_id != caller.client_id or row.rotated_at is not None:
        return INACTIVE
    if row.expires_at <= datetime.now(UTC):
        return INACTIVE
    grant = store.load_grant(session, row.grant_id)
    if grant is None or grant.revoked_at is not None:
        return INACTIVE
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": caller.client_id,
        "scope": " ".join(grant.scope),
        "sub": subject_for(hoviyat, caller, grant.national_code),
        "iat": int(row.created_at.timestamp()),
        "exp": int(row.expires_at.timestamp()),
        "iss": hoviyat.settings.issuer,
        "acr": grant.acr,
    }


def introspect(
    session: Session, hoviyat: Hoviyat, caller: Client, token: str, hint: str | None
) -> dict[str, Any]:
    # §2.1: the hint only orders the search; a wrong hint still finds the token.
    order = [_refresh_token, _access_token]
    if hint != "refresh_token":
        order.reverse()
    for lookup in order:
        found = lookup(session, hoviyat, caller, token)
        if found is not None:
            return found
    return INACTIVE
