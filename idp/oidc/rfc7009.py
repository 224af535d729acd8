"""Token revocation (RFC 7009).

Revoking a refresh token or an OIDC access token revokes its whole grant
(§2.1 allows, and RFC 9700 §4.14.2 recommends, taking the related tokens
along). Access tokens that belong to no grant (client credentials) are
self-contained and short-lived; they cannot be revoked one by one, which §2.2.1
lets the server say with ``unsupported_token_type``. Unknown or foreign tokens
answer 200 without effect (§2.2), so the endpoint tells an attacker nothing.
"""

from __future__ import annotations

from sqlmodel import Session

from idp.audit.log import append
from idp.context import Hoviyat
from idp.oauth.errors import OAuthError
from idp.oauth.rfc9068 import verify_access_token
from idp.oidc.grants import digest, grant_event
from idp.storage import grants as store
from idp.storage.models import Client
from idp.tokens import TokenError


def _grant_of(session: Session, hoviyat: Hoviyat, caller: Client, token: str) -> str | None:
    row = store.refresh_token(session, digest(token))
    if row is not None:
        return row.grant_id if row.client_id == caller.client_id else None
    try:
        claims = verify_access_token(
            hoviyat.keyring, token, issuer=hoviyat.settings.issuer, any_audience=True
        )
    except TokenError:
        return None
    if claims.get("client_id") != caller.client_id:
        return None
    grant_id = claims.get("gid")
    if not isinstance(grant_id, str):
        raise OAuthError(
            "unsupported_token_type",
            "client-credentials access tokens are not revocable one by one; they expire in minutes",
        )
    return grant_id


def revoke(session: Session, hoviyat: Hoviyat, caller: Client, token: str) -> None:
    grant_id = _grant_of(session, hoviyat, caller, token)
    if grant_id is None:
        return
    grant = store.load_grant(session, grant_id)
    if grant is not None and store.revoke_grant(session, grant_id, "revoked_by_client"):
        append(session, grant_event(hoviyat, caller, grant, "token_revoked", "rfc7009"))
