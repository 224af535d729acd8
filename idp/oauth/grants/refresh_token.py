"""The ``refresh_token`` grant: RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2).

A refresh token rotates on every use, and a used one never yields a second
successor: that would fork the grant into two chains that both keep rotating,
so a thief's copy would never be noticed. Within :data:`REFRESH_GRACE` of its
first use it is refused (``invalid_grant``) without revoking anything: a
client that raced itself keeps the successor its first request got. Returning
that same successor again would need its plaintext, which is never stored.
Any later use is reuse of a stolen token and revokes the whole grant, every
refresh and access token issued under it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth import rfc8707
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.grants import Form, Grant, required
from idp.oidc.grants import digest, refuse_and_revoke, token_response
from idp.storage import grants as store

REFRESH_GRACE = timedelta(seconds=10)


def refresh_token_grant(
    form: Form, caller: AuthenticatedClient, hoviyat: Hoviyat, session: Session
) -> dict[str, Any]:
    client = caller.client
    found = store.refresh_token_with_grant(session, digest(required(form, "refresh_token")))
    if found is None or found[0].client_id != client.client_id:
        raise OAuthError("invalid_grant", "the refresh token is unknown")
    row, grant = found
    if grant.revoked_at is not None:
        raise OAuthError("invalid_grant", "the refresh token's grant was revoked")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the refresh token has expired")
    # RFC 9449 §5: a public client's refresh token works only with its DPoP key.
    # Checked before the rotation, so a thief's try neither spends nor revokes it.
    if row.dpop_jkt is not None and caller.dpop_jkt != row.dpop_jkt:
        raise OAuthError("invalid_grant", "the refresh token is bound to another DPoP key")
    scope = list(grant.scope)
    if form.get("scope"):
        # §6: a narrower scope may be asked for, never a wider one.
        asked = form["scope"].split()
        extra = sorted(set(asked) - set(grant.scope))
        if extra:
            raise OAuthError("invalid_scope", f"not granted originally: {' '.join(extra)}")
        scope = [value for value in grant.scope if value in asked]
    # RFC 8707 §2.2, checked before the token rotates: a refused resource keeps it.
    audience = rfc8707.audience(form, hoviyat.settings)
    if not store.rotate_refresh_token(session, row.token_hash, now):
        # Already rotated, by this client's own retry or by a thief. The row's
        # rotated_at, read after the conditional UPDATE (which waited for any
        # concurrent rotation to commit), is the one truth every worker shares.
        first_use = store.rotated_at(session, row.token_hash)
        if first_use is not None and now - first_use <= REFRESH_GRACE:
            # A second successor would fork the grant into two chains that both
            # keep rotating. Only the plaintext of the one successor could be
            # returned again, and it is never stored, so a retry inside the
            # window is refused without revoking anything.
            raise OAuthError(
                "invalid_grant",
                "the refresh token was just used; use the refresh token issued then",
            )
        raise refuse_and_revoke(
            session,
            hoviyat,
            client,
            grant.id,
            "refresh_reuse",
            "the refresh token was already used; the whole grant is revoked",
        )
    return token_response(
        session,
        hoviyat,
        client,
        grant,
        scope=scope,
        nonce=None,
        parent_hash=row.token_hash,
        operation="refresh_token",
        dpop_jkt=caller.dpop_jkt,
        audience=audience,
        certificate_thumbprint=caller.certificate_thumbprint,  # RFC 8705 §3
    )


GRANT = Grant("refresh_token", handler=refresh_token_grant)
