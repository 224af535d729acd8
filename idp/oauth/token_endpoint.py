"""The token endpoint (RFC 6749 §3.2) and its grant dispatch.

A grant handler runs inside one database transaction (shared, under its own
savepoint, with other requests' writes): whatever it changes and the audit
entry of the token it issues commit together or not at all. A read-only grant
(client credentials) is checked and signed outside it; only its audit entry
joins a batch. The grants served are the application's (:mod:`idp.features`),
one module each in :mod:`idp.oauth.grants`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, audit_entry
from idp.context import Hoviyat, get_hoviyat
from idp.oauth import rfc8705
from idp.oauth.client_auth import AuthenticatedClient, ClientAuthentication
from idp.oauth.errors import OAuthError
from idp.oauth.form import oauth_form
from idp.oauth.grants import Grant, GrantHandler, ReadOnlyHandler
from idp.oauth.refused_clients import INVALID_CLIENT, refused_client
from idp.oauth.rfc9449 import (
    InvalidProof,
    NonceRequired,
    Proof,
    proof_header,
    request_path,
    request_url,
    server_nonces,
    spend,
    spend_soon,
    verify,
)
from idp.storage.group_commit import keeping_earlier_writes

T = TypeVar("T")

router = APIRouter(tags=["oauth"])


def _in_transaction(handler: ReadOnlyHandler) -> GrantHandler:
    """A read-only grant run inside the write transaction (when authentication writes)."""

    def run(
        form: Mapping[str, str], caller: AuthenticatedClient, hoviyat: Hoviyat, session: Session
    ) -> dict[str, Any]:
        body, event = handler(form, caller, hoviyat)
        append(session, event)
        return body

    return run


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


def _check_allowed(caller: AuthenticatedClient, grant_type: str) -> None:
    if grant_type not in caller.client.grant_types:
        raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
    if caller.client.dpop_bound_access_tokens and caller.dpop_jkt is None:
        # RFC 9449 §5.2: a client registered with dpop_bound_access_tokens.
        raise OAuthError("invalid_dpop_proof", "this client must send a DPoP proof (RFC 9449)")


def request_proof(request: Request, hoviyat: Hoviyat) -> Proof | None:
    """RFC 9449 §5, §10.1: the request's DPoP proof (at /token or /par), checked but not
    yet spent; None: none sent."""
    try:
        proof = proof_header(request.headers)
        if proof is None:
            return None
        settings = hoviyat.settings
        return verify(
            proof,
            method=request.method,
            url=request_url(settings.issuer, request_path(request.scope)),
            window=settings.dpop_proof_window_seconds,
            nonces=server_nonces(settings, hoviyat.secrets.client_secret_key),
        )
    except NonceRequired as exc:
        # RFC 9449 §8: the client retries with the nonce it is given.
        raise OAuthError(exc.error, str(exc), headers={"DPoP-Nonce": exc.nonce}) from None
    except InvalidProof as exc:
        raise OAuthError(exc.error, str(exc)) from None


def spent_then(session: Session, proof: Proof, window: int, action: Callable[[], T]) -> T:
    """Spend the proof's ``jti`` (RFC 9449 §11.1), then ``action``; the ``jti`` stays spent
    when the action fails, or a proof could be tried again and again (as private_key_jwt's
    assertion does, :meth:`ClientAuthentication.then`)."""
    try:
        spend(session, proof, window)
    except InvalidProof as exc:
        raise OAuthError(exc.error, str(exc)) from None
    return keeping_earlier_writes(session, action)


async def spend_through(hoviyat: Hoviyat, proof: Proof, event: AuditEvent | None = None) -> None:
    """Spend the proof's ``jti`` (RFC 9449 §11.1) as a group-committed bulk write, with
    ``event``, the grant's audit entry, in the same commit."""
    try:
        await spend_soon(
            hoviyat.committer, proof, hoviyat.settings.dpop_proof_window_seconds, event
        )
    except InvalidProof as exc:
        raise OAuthError(exc.error, str(exc)) from None


class TokenEndpoint:
    """The grants and client-authentication methods one application serves at /token."""

    def __init__(self, grants: Iterable[Grant], authentication: ClientAuthentication) -> None:
        self.authentication = authentication
        self._handlers: dict[str, GrantHandler] = {}
        self._read_only: dict[str, ReadOnlyHandler] = {}
        for grant in grants:
            if grant.read_only is not None:
                self._read_only[grant.grant_type] = grant.read_only
                self._handlers[grant.grant_type] = _in_transaction(grant.read_only)
            elif grant.handler is not None:
                self._handlers[grant.grant_type] = grant.handler
        self.grant_types = sorted(self._handlers)

    async def answer(self, request: Request, hoviyat: Hoviyat) -> Response:
        form = await oauth_form(request)
        try:
            return await self._answer(request, form, hoviyat)
        except OAuthError as error:
            if error.error != INVALID_CLIENT:
                raise
            # RFC 6749 §5.2: a failed client authentication, audited (rate limited).
            raise await refused_client(request, form, hoviyat, error, "token") from None

    async def _answer(
        self, request: Request, form: Mapping[str, str], hoviyat: Hoviyat
    ) -> Response:
        grant_type = form.get("grant_type", "")
        handler = self._handlers.get(grant_type)
        if handler is None:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        # Checked (signature included) before the write transaction; only its jti is written.
        proof = request_proof(request, hoviyat)
        authentication = self.authentication
        read_only = self._read_only.get(grant_type)
        if read_only is not None and not authentication.writes(request, form):
            # Checked and signed outside the write transaction, with or without a
            # DPoP proof: a proof's jti is spent in the audit entry's bulk write.
            try:
                caller = rfc8705.bind(
                    request, authentication.authenticate(request, form, hoviyat, None)
                )
                if proof is not None:
                    caller = replace(caller, dpop_jkt=proof.jkt)
                _check_allowed(caller, grant_type)
                body, event = read_only(form, caller, hoviyat)
            except OAuthError:
                if proof is not None:
                    await spend_through(hoviyat, proof)  # refused, the proof is spent all the same
                raise
            if proof is None:
                await hoviyat.committer.run(audit_entry(event))
            else:
                await spend_through(hoviyat, proof, event)
            return _TokenResponse(body)

        def grant(session: Session) -> dict[str, Any]:
            def granted(caller: AuthenticatedClient) -> dict[str, Any]:
                if proof is not None:
                    caller = replace(caller, dpop_jkt=proof.jkt)
                caller = rfc8705.bind(request, caller)  # RFC 8705 §3
                _check_allowed(caller, grant_type)
                return handler(form, caller, hoviyat, session)

            def authenticated() -> dict[str, Any]:
                return authentication.then(request, form, hoviyat, session, granted)

            if proof is None:
                return authenticated()
            window = hoviyat.settings.dpop_proof_window_seconds
            return spent_then(session, proof, window, authenticated)

        # Through the group committer: the grant's state changes and its audit
        # entry commit together, batched with other requests' writes.
        return _TokenResponse(await hoviyat.committer.run(grant))


@router.post("/token")
async def token(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> Response:
    endpoint: TokenEndpoint = request.app.state.token_endpoint
    return await endpoint.answer(request, hoviyat)


async def token_direct(request: Request) -> Response:
    """Every grant is answered through here (idp.http.direct); ``token`` documents it."""
    state = request.app.state
    endpoint: TokenEndpoint = state.token_endpoint
    return await endpoint.answer(request, state.hoviyat)
