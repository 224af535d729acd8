"""Authorization codes and the two grants that spend them (RFC 6749 §4.1, §6; RFC 9700 §4.14).

- A code is single use, lives 60 s and is bound to the client, redirect URI,
  PKCE challenge and nonce. Presenting a spent code again revokes the grant,
  and with it every token issued from the code (RFC 6749 §4.1.2).
- A refresh token rotates on every use, and a used one never yields a second
  successor: that would fork the grant into two chains that both keep
  rotating, so a thief's copy would never be noticed. Within
  :data:`REFRESH_GRACE` of its first use it is refused (``invalid_grant``)
  without revoking anything: a client that raced itself keeps the successor
  its first request got. Returning that same successor again would need its
  plaintext, which is never stored. Any later use is reuse of a stolen token
  and revokes the whole grant, every refresh and access token issued under it
  (RFC 9700 §4.14.2).

Single use is enforced by the database: ``UPDATE ... WHERE redeemed_at IS
NULL`` (or ``rotated_at IS NULL``) and the row count, so two workers racing on
one value see exactly one winner.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from fastapi import Request
from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.rfc9068 import issue_access_token
from idp.oidc import rfc7636
from idp.oidc.authorize import AuthorizationRequest
from idp.oidc.id_token import id_token_claims, sign_id_token
from idp.oidc.identity import IdentityRefused, identity_for
from idp.storage.group_commit import KeepWrites
from idp.storage.models import Client
from idp.storage.oidc import GrantRecord, OidcAuthorizationCode, OidcGrant, OidcRefreshToken
from verifiers.registry.base import RegistryUnavailable

CODE_LIFETIME = timedelta(seconds=60)
REFRESH_TOKEN_LIFETIME = timedelta(days=14)
REFRESH_GRACE = timedelta(seconds=10)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# The token endpoint's hot paths read and write these tables with Core
# statements: ORM identity-map bookkeeping cost more than the queries did.
GRANTS = OidcGrant.__table__  # type: ignore[attr-defined]
CODES = OidcAuthorizationCode.__table__  # type: ignore[attr-defined]
REFRESH_TOKENS = OidcRefreshToken.__table__  # type: ignore[attr-defined]


def _with_grant(table: Any, key: Any) -> Any:
    """One query for a code or refresh token and its grant: the grants run in the
    shared writer, whose time every other request waits for."""
    own = [column.label(f"own_{column.name}") for column in table.c]
    return (
        select(GRANTS, *own)
        .join_from(table, GRANTS, GRANTS.c.id == table.c.grant_id)
        .where(key == bindparam("value"))
    )


_CODE_WITH_GRANT = _with_grant(CODES, CODES.c.code_hash)
# Built once and given their values at execution: statements built per
# request cost the writer as much as running them.
_INSERT_GRANT = insert(GRANTS)
_INSERT_CODE = insert(CODES)
_INSERT_REFRESH_TOKEN = insert(REFRESH_TOKENS)
_REFRESH_WITH_GRANT = _with_grant(REFRESH_TOKENS, REFRESH_TOKENS.c.token_hash)
# Single use (RFC 6749 §4.1.2, RFC 9700 §4.14.2): the row count tells the one winner.
_SPEND_CODE = (
    update(CODES)
    .where(CODES.c.code_hash == bindparam("spent_code_hash"), CODES.c.redeemed_at.is_(None))
    .values(redeemed_at=bindparam("now", type_=CODES.c.redeemed_at.type))
)
_ROTATE_REFRESH_TOKEN = (
    update(REFRESH_TOKENS)
    .where(
        REFRESH_TOKENS.c.token_hash == bindparam("rotated_token_hash"),
        REFRESH_TOKENS.c.rotated_at.is_(None),
    )
    .values(rotated_at=bindparam("now", type_=REFRESH_TOKENS.c.rotated_at.type))
)


def _load_with_grant(
    session: Session, statement: Any, table: Any, value: str
) -> tuple[Any, GrantRecord] | None:
    row = session.execute(statement, {"value": value}).first()
    if row is None:
        return None
    own = SimpleNamespace(**{column.name: getattr(row, f"own_{column.name}") for column in table.c})
    return own, cast(GrantRecord, row)


def load_grant(session: Session, grant_id: str) -> GrantRecord | None:
    row = session.execute(select(GRANTS).where(GRANTS.c.id == grant_id)).first()
    return cast(GrantRecord, row) if row is not None else None


@dataclass(frozen=True)
class LoginFacts:
    """How the user logged in, from the login pages (interaction row or live session)."""

    session_id: str | None
    national_code: str
    acr: str
    amr: list[str]
    auth_time: datetime
    entity_national_id: str | None
    mobile: str | None


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
    login: LoginFacts,
    tracking_code: str,
    audit: list[AuditEvent] | None = None,
) -> str:
    """Create the grant and its one authorization code; returns the code.

    The audit entry is appended to ``audit`` when given, for the caller to
    insert in the same transaction with its own entries (one statement).
    """
    # Plain values, not an OidcGrant: building the model cost more than its insert.
    now = _now()
    values: dict[str, Any] = {
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
    }
    session.execute(_INSERT_GRANT, values)
    grant = cast(GrantRecord, SimpleNamespace(**values))
    code = secrets.token_urlsafe(32)
    session.execute(
        _INSERT_CODE,
        {
            "code_hash": digest(code),
            "grant_id": grant.id,
            "client_id": client.client_id,
            "redirect_uri": request.redirect_uri,
            "code_challenge": request.code_challenge,
            "nonce": request.nonce,
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


def revoke_grant(session: Session, grant_id: str, reason: str) -> bool:
    """Revoke a grant once; True if this call revoked it."""
    result = session.execute(
        update(OidcGrant)
        .where(OidcGrant.id == grant_id)  # type: ignore[arg-type]
        .where(OidcGrant.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=_now(), revoked_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _refuse_and_revoke(
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    grant_id: str,
    reason: str,
    description: str,
) -> KeepWrites:
    grant = load_grant(session, grant_id)
    revoke_grant(session, grant_id, reason)
    if grant is not None:
        event = grant_event(hoviyat, client, grant, "grant_revoked", reason, outcome="refused")
        append(session, event)
    # The revocation must outlive the error answer: the group committer keeps
    # this write's changes and fails the request with the error.
    return KeepWrites(OAuthError("invalid_grant", description))


def _token_response(
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    grant: GrantRecord,
    *,
    scope: list[str],
    nonce: str | None,
    parent_hash: str | None,
    operation: str,
) -> dict[str, Any]:
    try:
        identity = identity_for(hoviyat, client, grant, scope, target="id_token")
    except IdentityRefused as exc:
        raise OAuthError("invalid_grant", str(exc)) from None
    except RegistryUnavailable as exc:
        raise OAuthError(
            "temporarily_unavailable",
            f"the {exc.registry} registry cannot answer now; retry shortly",
            status=503,
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    settings = hoviyat.settings
    lifetime = settings.access_token_ttl_seconds
    access_token = issue_access_token(
        hoviyat.keyring,
        issuer=settings.issuer,
        client_id=client.client_id,
        subject=identity.subject,
        scope=scope,
        lifetime=lifetime,
        extra_claims={"gid": grant.id, "acr": grant.acr, "service_code": client.service_code},
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
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scope),
        "id_token": sign_id_token(hoviyat.keyring, claims, client.id_token_signed_response_alg),
    }
    if "refresh_token" in client.grant_types:
        refresh_token = secrets.token_urlsafe(32)
        now = _now()
        session.execute(
            _INSERT_REFRESH_TOKEN,
            {
                "token_hash": digest(refresh_token),
                "grant_id": grant.id,
                "client_id": client.client_id,
                "parent_hash": parent_hash,
                "created_at": now,
                "expires_at": now + REFRESH_TOKEN_LIFETIME,
                "rotated_at": None,
            },
        )
        body["refresh_token"] = refresh_token
    append(session, grant_event(hoviyat, client, grant, "token_issued", operation))
    return body


def authorization_code_grant(
    request: Request,
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    hoviyat: Hoviyat,
    session: Session,
) -> dict[str, Any]:
    """RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5-4.6)."""
    client = caller.client
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "code is missing")
    found = _load_with_grant(session, _CODE_WITH_GRANT, CODES, digest(code))
    if found is None:
        raise OAuthError("invalid_grant", "the authorization code is unknown")
    row, grant = found
    if row.redeemed_at is not None:
        raise _refuse_and_revoke(
            session,
            hoviyat,
            client,
            row.grant_id,
            "code_replay",
            "the authorization code was already used; every token issued from it is revoked",
        )
    # Checked before the code is spent: a code stolen by another client does not
    # burn the rightful client's login.
    if row.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the authorization code was issued to another client")
    now = _now()
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if form.get("redirect_uri") != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    if not rfc7636.verify(form.get("code_verifier"), row.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    spent = session.execute(_SPEND_CODE, {"spent_code_hash": row.code_hash, "now": now})
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise _refuse_and_revoke(
            session,
            hoviyat,
            client,
            row.grant_id,
            "code_replay",
            "the authorization code was used concurrently; every token issued from it is revoked",
        )
    if grant.revoked_at is not None:
        raise OAuthError("invalid_grant", "the grant behind this code was revoked")
    return _token_response(
        session,
        hoviyat,
        client,
        grant,
        scope=list(grant.scope),
        nonce=row.nonce,
        parent_hash=None,
        operation="authorization_code",
    )


def refresh_token_grant(
    request: Request,
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    hoviyat: Hoviyat,
    session: Session,
) -> dict[str, Any]:
    """RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2)."""
    client = caller.client
    token = form.get("refresh_token")
    if not token:
        raise OAuthError("invalid_request", "refresh_token is missing")
    found = _load_with_grant(session, _REFRESH_WITH_GRANT, REFRESH_TOKENS, digest(token))
    if found is None or found[0].client_id != client.client_id:
        raise OAuthError("invalid_grant", "the refresh token is unknown")
    row, grant = found
    if grant.revoked_at is not None:
        raise OAuthError("invalid_grant", "the refresh token's grant was revoked")
    now = _now()
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the refresh token has expired")
    scope = list(grant.scope)
    if form.get("scope"):
        # §6: a narrower scope may be asked for, never a wider one.
        asked = form["scope"].split()
        extra = sorted(set(asked) - set(grant.scope))
        if extra:
            raise OAuthError("invalid_scope", f"not granted originally: {' '.join(extra)}")
        scope = [value for value in grant.scope if value in asked]
    rotated = session.execute(
        _ROTATE_REFRESH_TOKEN, {"rotated_token_hash": row.token_hash, "now": now}
    )
    if rotated.rowcount != 1:  # type: ignore[attr-defined]
        # Already rotated, by this client's own retry or by a thief. The row's
        # rotated_at, read after the conditional UPDATE (which waited for any
        # concurrent rotation to commit), is the one truth every worker shares.
        first_use = session.execute(
            select(REFRESH_TOKENS.c.rotated_at).where(REFRESH_TOKENS.c.token_hash == row.token_hash)
        ).scalar_one()
        if first_use is not None and now - _aware(first_use) <= REFRESH_GRACE:
            # RFC 9700 §4.14.2: a second successor would fork the grant into two
            # chains that both keep rotating. Only the plaintext of the one
            # successor could be returned again, and it is never stored, so a
            # retry inside the window is refused without revoking anything.
            raise OAuthError(
                "invalid_grant",
                "the refresh token was just used; use the refresh token issued then",
            )
        raise _refuse_and_revoke(
            session,
            hoviyat,
            client,
            grant.id,
            "refresh_reuse",
            "the refresh token was already used; the whole grant is revoked",
        )
    return _token_response(
        session,
        hoviyat,
        client,
        grant,
        scope=scope,
        nonce=None,
        parent_hash=row.token_hash,
        operation="refresh_token",
    )
