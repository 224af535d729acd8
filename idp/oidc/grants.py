"""The grant aggregate: what one login authorized one client, its code and its tokens.

- A code is single use, lives 60 s and is bound to the client, redirect URI,
  PKCE challenge and nonce (the ``authorization_code`` grant spends it:
  :mod:`idp.oauth.grants.authorization_code`).
- A refresh token rotates on every use (:mod:`idp.oauth.grants.refresh_token`).
- Revoking the grant (code replay, refresh reuse, RFC 7009, logout) kills every
  access and refresh token issued under it.

The statements are :mod:`idp.storage.grants`'.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.oauth import rfc8705
from idp.oauth.client_auth import NONE
from idp.oauth.errors import OAuthError
from idp.oauth.rfc9068 import issue_access_token
from idp.oauth.rfc9449 import TOKEN_TYPE
from idp.oidc.authorize import AuthorizationRequest
from idp.oidc.id_token import id_token_claims, sign_id_token
from idp.oidc.identity import identity_or
from idp.storage import grants as store
from idp.storage.grants import load_grant as load_grant
from idp.storage.grants import revoke_grant as revoke_grant
from idp.storage.group_commit import KeepWrites
from idp.storage.login import AuthenticatedPerson
from idp.storage.models import Client
from idp.storage.oidc import GrantRecord
from verifiers.registry.base import RegistryUnavailable

CODE_LIFETIME = timedelta(seconds=60)
REFRESH_TOKEN_LIFETIME = timedelta(days=14)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def grant_event(
    hoviyat: Hoviyat,
    client: Client,
    grant: GrantRecord,
    event_type: str,
    operation: str,
    outcome: str = "ok",
    **detail: Any,
) -> AuditEvent:
    """The audit entry of something a client did with ``grant``.

    Insert it with :func:`idp.audit.log.append`, or collect several and insert
    them at once.
    """
    policy = hoviyat.policies.get(client.service_code)
    return AuditEvent(
        tracking_code=grant.tracking_code,
        event_type=event_type,
        actor_type="client",
        actor_id=client.client_id,
        service_code=client.service_code,
        legal_basis=policy.legal_basis if policy else None,
        operation=operation,
        subject_hash=subject_hash(hoviyat.secrets.subject_pepper, grant.national_code),
        outcome=outcome,
        detail={"grant_id": grant.id, "acr": grant.acr, **detail},
    )


def issue_code(
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    request: AuthorizationRequest,
    login: AuthenticatedPerson,
    tracking_code: str,
    audit: list[AuditEvent] | None = None,
) -> str:
    """Create the grant and its one authorization code; returns the code.

    The audit entry is appended to ``audit`` when given, for the caller to
    insert in the same transaction with its own entries (one statement).
    """
    now = datetime.now(UTC)
    grant = store.insert_grant(
        session,
        {
            "id": secrets.token_urlsafe(24),
            "client_id": client.client_id,
            "national_code": login.national_code,
            "entity_national_id": login.entity_national_id,
            "phone_number": login.mobile,
            "scope": list(request.scope),
            "claims_request": dict(request.claims),
            "acr": login.acr,
            "amr": list(login.amr),
            "auth_time": login.auth_time,
            "session_id": login.session_id,
            "tracking_code": tracking_code,
            "created_at": now,
            "revoked_at": None,
            "revoked_reason": None,
        },
    )
    code = secrets.token_urlsafe(32)
    store.insert_code(
        session,
        {
            "code_hash": digest(code),
            "grant_id": grant.id,
            "client_id": client.client_id,
            "redirect_uri": request.redirect_uri,
            "code_challenge": request.code_challenge,
            "nonce": request.nonce,
            "dpop_jkt": request.dpop_jkt,
            "created_at": now,
            "expires_at": now + CODE_LIFETIME,
            "redeemed_at": None,
        },
    )
    event = grant_event(hoviyat, client, grant, "authorization_code_issued", "oidc.authorize")
    if audit is None:
        append(session, event)
    else:
        audit.append(event)
    return code


def refuse_and_revoke(
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    grant_id: str,
    reason: str,
    description: str,
) -> KeepWrites:
    """The ``invalid_grant`` answer to a replayed code or refresh token, the grant revoked."""
    grant = store.load_grant(session, grant_id)
    store.revoke_grant(session, grant_id, reason)
    if grant is not None:
        event = grant_event(hoviyat, client, grant, "grant_revoked", reason, outcome="refused")
        append(session, event)
    # The revocation must outlive the error answer: the group committer keeps
    # this write's changes and fails the request with the error.
    return KeepWrites(OAuthError("invalid_grant", description))


def _registry_down(error: RegistryUnavailable) -> OAuthError:
    return OAuthError(
        "temporarily_unavailable",
        f"the {error.registry} registry cannot answer now; retry shortly",
        status=503,
        headers={"Retry-After": str(error.retry_after)},
    )


def token_response(
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    grant: GrantRecord,
    *,
    scope: list[str],
    nonce: str | None,
    parent_hash: str | None,
    operation: str,
    dpop_jkt: str | None = None,
    audience: str | None = None,
    certificate_thumbprint: str | None = None,
) -> dict[str, Any]:
    """A grant's tokens (OIDC Core §3.1.3.3), a refresh token too if the client may refresh.

    With ``dpop_jkt`` the access token is bound to that DPoP key (RFC 9449 §5,
    §6.1). A confidential client's refresh token is not: it is already bound to
    the client's authentication (§5). A public client's is bound to the key.
    """
    identity = identity_or(
        hoviyat,
        client,
        grant,
        scope,
        target="id_token",
        refused=lambda reason: OAuthError("invalid_grant", reason),
        unavailable=_registry_down,
    )
    settings = hoviyat.settings
    lifetime = settings.access_token_ttl_seconds
    access_token = issue_access_token(
        hoviyat.keyring,
        issuer=settings.issuer,
        client_id=client.client_id,
        subject=identity.subject,
        scope=scope,
        lifetime=lifetime,
        audience=audience,  # RFC 8707
        extra_claims={
            "gid": grant.id,
            "acr": grant.acr,
            "service_code": client.service_code,
            **rfc8705.confirmation(dpop_jkt, certificate_thumbprint),  # RFC 8705 §3.1
        },
    )
    claims = id_token_claims(
        issuer=settings.issuer,
        client_id=client.client_id,
        subject=identity.subject,
        auth_time=grant.auth_time,
        acr=grant.acr,
        amr=grant.amr,
        nonce=nonce,
        session_id=grant.session_id,
        access_token=access_token,
        identity=identity.claims,
    )
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer" if dpop_jkt is None else TOKEN_TYPE,
        "expires_in": lifetime,
        "scope": " ".join(scope),
        "id_token": sign_id_token(hoviyat.keyring, claims, client.id_token_signed_response_alg),
    }
    if "refresh_token" in client.grant_types:
        refresh_token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        store.insert_refresh_token(
            session,
            {
                "token_hash": digest(refresh_token),
                "grant_id": grant.id,
                "client_id": client.client_id,
                "parent_hash": parent_hash,
                "dpop_jkt": dpop_jkt if client.token_endpoint_auth_method == NONE else None,
                "created_at": now,
                "expires_at": now + REFRESH_TOKEN_LIFETIME,
                "rotated_at": None,
            },
        )
        body["refresh_token"] = refresh_token
    append(session, grant_event(hoviyat, client, grant, "token_issued", operation))
    return body
