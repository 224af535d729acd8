"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

``post_logout_redirect_uri`` is followed only when it exactly matches one the
client registered, and the client is known from a verified ``id_token_hint``
(or ``client_id`` agreeing with it); anything else is refused with a page, never
a redirect (§3: no open redirector). Ending the session revokes the grants
issued under it, so its refresh tokens stop working too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.oidc import backchannel
from idp.oidc.authorize import redirect_with
from idp.oidc.grants import grant_event, revoke_grant
from idp.problems import bad_request
from idp.storage import login_sessions
from idp.storage.clients import get_client
from idp.storage.models import Client
from idp.tokens import TokenError
from idp.tokens.keyring import RETIRED_KEY_LIFETIME


@dataclass(frozen=True)
class LogoutRequest:
    client: Client | None
    session_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None

    @property
    def confirmed_by_rp(self) -> bool:
        """A verified id_token_hint shows the RP asked; otherwise the user must confirm (§2)."""
        return self.client is not None

    def redirect_url(self) -> str | None:
        if self.post_logout_redirect_uri is None:
            return None
        return redirect_with(self.post_logout_redirect_uri, {"state": self.state})


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise bad_request("logout-request-invalid", f"parameter {name} is repeated")
    return values[0] if values and values[0] else None


def _hint_claims(hoviyat: Hoviyat, hint: str) -> dict[str, Any]:
    # §2: an expired ID token is still a good hint. Its signature and issuer
    # must hold; the lifetime of our published keys bounds how old it may be.
    try:
        return hoviyat.keyring.verify(
            hint,
            typ="JWT",
            issuer=hoviyat.settings.issuer,
            leeway=int(RETIRED_KEY_LIFETIME.total_seconds()),
        )
    except TokenError as exc:
        raise bad_request("id-token-hint-invalid", f"id_token_hint rejected: {exc}") from None


def parse_logout(
    session: Session, hoviyat: Hoviyat, params: Mapping[str, Sequence[str]]
) -> LogoutRequest:
    hint = _single(params, "id_token_hint")
    client_id = _single(params, "client_id")
    redirect_uri = _single(params, "post_logout_redirect_uri")
    state = _single(params, "state")
    session_id = None
    client = None
    if hint is not None:
        claims = _hint_claims(hoviyat, hint)
        audience = claims.get("aud")
        hinted_client = audience if isinstance(audience, str) else None
        if client_id is not None and client_id != hinted_client:
            raise bad_request("logout-request-invalid", "client_id differs from id_token_hint aud")
        client = get_client(session, hinted_client) if hinted_client else None
        sid = claims.get("sid")
        session_id = sid if isinstance(sid, str) else None
    if redirect_uri is not None:
        if client is None:
            raise bad_request(
                "logout-request-invalid",
                "post_logout_redirect_uri needs a valid id_token_hint naming the client",
            )
        if redirect_uri not in client.post_logout_redirect_uris:
            raise bad_request(
                "logout-request-invalid",
                "post_logout_redirect_uri is not registered for this client (exact match)",
            )
    return LogoutRequest(client, session_id, redirect_uri, state)


def audit_logout(
    session: Session, hoviyat: Hoviyat, session_id: str, client: Client | None
) -> None:
    """One audit entry per ended login session, under the login's own tracking code."""
    login = login_sessions.by_id(session, session_id)
    if login is None:
        return
    policy = hoviyat.policies.get(client.service_code) if client is not None else None
    append(
        session,
        AuditEvent(
            tracking_code=login.tracking_code,
            event_type="logout",
            actor_type="client" if client is not None else "person",
            actor_id=client.client_id if client is not None else None,
            service_code=client.service_code if client is not None else None,
            legal_basis=policy.legal_basis if policy is not None else None,
            operation="rp_initiated_logout",
            subject_hash=subject_hash(hoviyat.secrets.subject_pepper, login.national_code),
            outcome="ok",
            detail={"session_id": session_id},
        ),
    )


def end_grants(session: Session, hoviyat: Hoviyat, session_ids: set[str]) -> int:
    """Revoke every live grant issued under the ended sessions; audits each."""
    if not session_ids:
        return 0
    grants = login_sessions.live_grants(session, session_ids)
    clients: dict[str, Client] = {}
    for grant in grants:
        client = get_client(session, grant.client_id)
        if client is not None:
            clients[client.client_id] = client
        if revoke_grant(session, grant.id, "logout") and client is not None:
            append(session, grant_event(hoviyat, client, grant, "grant_revoked", "logout"))
    # Back-Channel Logout 1.0: the clients are told in this same transaction.
    backchannel.queue_logouts(session, hoviyat, grants, clients)
    return len(grants)
