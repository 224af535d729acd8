"""The ``authorization_code`` grant: RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5-4.6).

The code is spent with a conditional UPDATE (one winner among racing
workers); presenting a spent code again revokes the grant, and with it every
token issued from the code (RFC 6749 §4.1.2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth import rfc8707
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.grants import Form, Grant, required
from idp.oidc import rfc7636
from idp.oidc.grants import digest, refuse_and_revoke, token_response
from idp.storage import grants as store
from idp.storage.group_commit import KeepWrites


def authorization_code_grant(
    form: Form, caller: AuthenticatedClient, hoviyat: Hoviyat, session: Session
) -> dict[str, Any]:
    client = caller.client
    found = store.code_with_grant(session, digest(required(form, "code")))
    if found is None:
        raise OAuthError("invalid_grant", "the authorization code is unknown")
    row, grant = found

    def replayed(how: str) -> KeepWrites:
        return refuse_and_revoke(
            session,
            hoviyat,
            client,
            row.grant_id,
            "code_replay",
            f"the authorization code was {how}; every token issued from it is revoked",
        )

    if row.redeemed_at is not None:
        raise replayed("already used")
    # Checked before the code is spent: a code stolen by another client does not
    # burn the rightful client's login.
    if row.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the authorization code was issued to another client")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if row.dpop_jkt is not None and caller.dpop_jkt != row.dpop_jkt:
        # RFC 9449 §10: the code was bound to a DPoP key at /authorize; checked before
        # the code is spent, so a thief without that key does not burn the login.
        raise OAuthError(
            "invalid_grant", "the authorization code is bound to another DPoP key (dpop_jkt)"
        )
    if form.get("redirect_uri") != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    if not rfc7636.verify(form.get("code_verifier"), row.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    # RFC 8707 §2.2, checked before the code is spent: a refused resource keeps it.
    audience = rfc8707.audience(form, hoviyat.settings)
    if not store.spend_code(session, row.code_hash, now):
        raise replayed("used concurrently")
    if grant.revoked_at is not None:
        raise OAuthError("invalid_grant", "the grant behind this code was revoked")
    return token_response(
        session,
        hoviyat,
        client,
        grant,
        scope=list(grant.scope),
        nonce=row.nonce,
        parent_hash=None,
        operation="authorization_code",
        dpop_jkt=caller.dpop_jkt,
        audience=audience,
        certificate_thumbprint=caller.certificate_thumbprint,  # RFC 8705 §3
    )


GRANT = Grant("authorization_code", handler=authorization_code_grant)
