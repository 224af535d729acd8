"""The token endpoint (RFC 6749 §3.2) and its grant dispatch.

A grant handler runs inside one database transaction (shared, under its own
savepoint, with other requests' writes): whatever it changes and the audit
entry of the token it issues commit together or not at all.

``client_credentials`` (§4.4) is implemented here; the OpenID Connect grants
(authorization code, refresh token) register themselves with
:func:`register_grant`. Every issued token writes an audit entry in the same
transaction as whatever state the grant changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, audit_entry
from idp.context import Hoviyat, get_hoviyat
from idp.http.direct import direct_route
from idp.oauth.client_auth import (
    AuthenticatedClient,
    as_authenticated_client,
    authenticate_client,
    authentication_writes,
)
from idp.oauth.errors import OAuthError
from idp.oauth.form import oauth_form
from idp.oauth.rfc9068 import issue_access_token
from idp.tracking import new_tracking_code

router = APIRouter(tags=["oauth"])

GrantHandler = Callable[[Request, Mapping[str, str], AuthenticatedClient, Hoviyat, Session], dict]
_GRANTS: dict[str, GrantHandler] = {}


ReadOnlyGrant = Callable[
    [Request, Mapping[str, str], AuthenticatedClient, Hoviyat], tuple[dict, AuditEvent]
]
_READ_ONLY_GRANTS: dict[str, ReadOnlyGrant] = {}


def register_grant(grant_type: str, handler: GrantHandler) -> None:
    _GRANTS[grant_type] = handler


def register_read_only_grant(grant_type: str, handler: ReadOnlyGrant) -> None:
    """A grant that changes nothing but its audit entry (client credentials).

    It is checked and signed outside the shared write transaction; only its
    audit entry joins a batch. That keeps the signature out of the time the
    database's write lock is held.
    """
    _READ_ONLY_GRANTS[grant_type] = handler

    def in_transaction(
        request: Request,
        form: Mapping[str, str],
        caller: AuthenticatedClient,
        hoviyat: Hoviyat,
        session: Session,
    ) -> dict:
        body, event = handler(request, form, caller, hoviyat)
        append(session, event)
        return body

    _GRANTS[grant_type] = in_transaction


def supported_grants() -> list[str]:
    return sorted(_GRANTS)


def _client_credentials(
    request: Request,
    form: Mapping[str, str],
    caller: AuthenticatedClient,
    hoviyat: Hoviyat,
) -> tuple[dict[str, Any], AuditEvent]:
    client = caller.client
    policy = hoviyat.policies.get(client.service_code)
    if policy is None:
        raise OAuthError("unauthorized_client", f"service policy {client.service_code} is gone")
    allowed = set(policy.operations)
    requested = set(form.get("scope", "").split()) or allowed
    if not requested <= allowed:
        extra = " ".join(sorted(requested - allowed))
        raise OAuthError("invalid_scope", f"policy {policy.service_code} does not allow: {extra}")
    lifetime = hoviyat.settings.access_token_ttl_seconds
    scope = sorted(requested)
    token = issue_access_token(
        hoviyat.keyring,
        issuer=hoviyat.settings.issuer,
        client_id=client.client_id,
        subject=client.client_id,
        scope=scope,
        lifetime=lifetime,
        extra_claims={"service_code": client.service_code, "roles": list(client.roles)},
    )
    event = AuditEvent(
        tracking_code=new_tracking_code(),
        event_type="token_issued",
        actor_type="client",
        actor_id=client.client_id,
        service_code=client.service_code,
        legal_basis=policy.legal_basis,
        operation="client_credentials",
        outcome="ok",
    )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scope),
    }
    return body, event


register_read_only_grant("client_credentials", _client_credentials)


class _TokenResponse(Response):
    """RFC 6749 §5.1: JSON that no cache keeps, its fixed headers encoded once."""

    _HEADERS: ClassVar[tuple[tuple[bytes, bytes], ...]] = (
        (b"cache-control", b"no-store"),
        (b"pragma", b"no-cache"),
        (b"content-type", b"application/json"),
    )

    def __init__(self, body: dict[str, Any]) -> None:
        # Starlette's constructor re-encodes the same headers on every answer.
        self.status_code = 200
        self.background = None
        self.body = orjson.dumps(body)
        self.raw_headers = [*self._HEADERS, (b"content-length", b"%d" % len(self.body))]


@router.post("/token")
async def token(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> Response:
    form = await oauth_form(request)
    grant_type = form.get("grant_type", "")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    read_only = _READ_ONLY_GRANTS.get(grant_type)
    if read_only is not None and not authentication_writes(request, form):
        caller = authenticate_client(request, form, hoviyat, None)
        if grant_type not in caller.client.grant_types:
            raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
        body, event = read_only(request, form, caller, hoviyat)
        await hoviyat.committer.run(audit_entry(event))
        return _TokenResponse(body)

    def grant(session: Session) -> dict:
        def granted(caller: AuthenticatedClient) -> dict:
            if grant_type not in caller.client.grant_types:
                raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
            return handler(request, form, caller, hoviyat, session)

        return as_authenticated_client(request, form, hoviyat, session, granted)

    # Through the group committer: the grant's state changes and its audit
    # entry commit together, batched with other requests' writes.
    body = await hoviyat.committer.run(grant)
    return _TokenResponse(body)


@direct_route("POST", "/token")
async def token_direct(request: Request) -> Response:
    """Every grant is answered through here (idp.http.direct); ``token`` documents it."""
    return await token(request, request.app.state.hoviyat)
