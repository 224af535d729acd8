"""Access-token authentication for the API, Bearer (RFC 6750) or DPoP-bound (RFC 9449 §7),
and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from idp.audit.log import AuditEvent
from idp.context import Hoviyat, get_hoviyat
from idp.oauth import rfc8705, rfc9449
from idp.oauth.rfc9068 import verify_access_token
from idp.problems import Problem, credentials_required, forbidden, unauthorized
from idp.storage.models import Client
from idp.tokens import TokenError
from policies.service_policy import ServicePolicy


@dataclass(frozen=True)
class Caller:
    """Who is calling: the client, its service policy, and what its token grants."""

    client_id: str
    service_code: str
    policy: ServicePolicy
    scopes: frozenset[str]
    roles: frozenset[str]
    claims: dict[str, Any]

    def audit_event(
        self,
        *,
        tracking_code: str,
        event_type: str,
        operation: str,
        outcome: str,
        actor_type: str = "client",
        subject_hash: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """The audit entry of an act by this client: who acted, for which service, on what basis."""
        return AuditEvent(
            tracking_code=tracking_code,
            event_type=event_type,
            actor_type=actor_type,
            actor_id=self.client_id,
            service_code=self.service_code,
            legal_basis=self.policy.legal_basis,
            operation=operation,
            subject_hash=subject_hash,
            outcome=outcome,
            detail=detail if detail is not None else {},
        )

    def require_operation(self, operation: str) -> None:
        if not self.policy.allows(operation) or operation not in self.scopes:
            raise forbidden(
                "operation-not-allowed",
                f"service policy {self.service_code!r} does not allow operation {operation!r}",
                service_code=self.service_code,
                operation=operation,
            )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # No token (or another scheme): a bare challenge, RFC 6750 §3.1.
        raise credentials_required(
            "send an access token from /token as 'Authorization: Bearer <token>'"
        )
    return token.strip()


def _presented(request: Request) -> tuple[str, str]:
    """The Authorization scheme (``bearer`` or ``dpop``, RFC 9449 §7.1) and the token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "dpop" and token.strip():
        return "dpop", token.strip()
    return "bearer", bearer_token(request)


def _dpop_refusal(exc: rfc9449.TokenRefused) -> Problem:
    headers = {"WWW-Authenticate": rfc9449.challenge(exc.error, str(exc))}
    if exc.nonce is not None:
        headers["DPoP-Nonce"] = exc.nonce  # RFC 9449 §9
    return Problem(401, "unauthorized", "Authentication required", str(exc), headers=headers)


def access_token_claims(
    request: Request, hoviyat: Hoviyat
) -> tuple[dict[str, Any], rfc9449.Proof | None]:
    """The verified claims of the request's access token, and its DPoP proof to spend
    (:func:`spend_proof`, :func:`spend_proof_now`) when the token is DPoP-bound.

    A bearer token goes the RFC 6750 way unchanged; a DPoP-bound one only with a
    proof by its key for this request (RFC 9449 §7), never as Bearer (§7.2).
    """
    scheme, token = _presented(request)
    try:
        claims = verify_access_token(hoviyat.keyring, token, issuer=hoviyat.settings.issuer)
    except TokenError as exc:
        raise unauthorized(f"access token rejected: {exc}") from None
    if "cnf" in claims:
        try:
            rfc8705.confirm(request, claims)  # RFC 8705 §3: its certificate, or refused
        except rfc8705.CertificateMismatch as exc:
            raise unauthorized(str(exc)) from None
    if scheme == "bearer" and rfc9449.bound_key(claims) is None:
        return claims, None  # RFC 6750, as before DPoP: the busiest path pays nothing for it
    settings = hoviyat.settings
    try:
        proof = rfc9449.confirm(
            scheme,
            token,
            claims,
            request.headers,
            method=request.method,
            url=rfc9449.request_url(settings.issuer, rfc9449.request_path(request.scope)),
            window=settings.dpop_proof_window_seconds,
            nonces=rfc9449.server_nonces(settings, hoviyat.secrets.client_secret_key),
        )
    except rfc9449.TokenRefused as exc:
        raise _dpop_refusal(exc) from None
    return claims, proof


async def spend_proof(hoviyat: Hoviyat, proof: rfc9449.Proof | None) -> None:
    """Spend a DPoP proof's ``jti`` (RFC 9449 §11.1), a bulk write of the group
    committer; a replayed proof is refused."""
    if proof is None:
        return
    try:
        window = hoviyat.settings.dpop_proof_window_seconds
        await rfc9449.spend_soon(hoviyat.committer, proof, window)
    except rfc9449.InvalidProof as exc:
        raise _dpop_refusal(rfc9449.TokenRefused(exc.error, str(exc))) from None


def spend_proof_now(hoviyat: Hoviyat, proof: rfc9449.Proof | None) -> None:
    """:func:`spend_proof` for code that runs in a worker thread (it waits for the commit)."""
    if proof is None:
        return
    try:
        rfc9449.spend_now(hoviyat.committer, proof, hoviyat.settings.dpop_proof_window_seconds)
    except rfc9449.InvalidProof as exc:
        raise _dpop_refusal(rfc9449.TokenRefused(exc.error, str(exc))) from None


def token_claims(request: Request, hoviyat: Hoviyat) -> dict[str, Any]:
    claims, _client, proof = _verified(request, hoviyat)
    spend_proof_now(hoviyat, proof)
    return claims


def _verified(
    request: Request, hoviyat: Hoviyat
) -> tuple[dict[str, Any], Client | None, rfc9449.Proof | None]:
    """The token's claims, its client as the store has it now, and the DPoP proof to spend.

    A signed token proves who it was issued to, not that the client may still
    act: a client disabled by an administrator is refused on its next request,
    on every worker and host, within ``ClientDirectory.ttl_seconds`` (the
    directory re-reads the row at most that long after it cached it).
    """
    claims, proof = access_token_claims(request, hoviyat)
    client_id = claims.get("client_id")  # RFC 9068 §2.2: always present
    client = (
        hoviyat.client_directory.lookup(hoviyat.db, client_id)
        if isinstance(client_id, str)
        else None
    )
    # A client-credentials token (service_code) acts as its client alone, and a
    # login's token (gid) acts for a person through that client: either way the
    # client must still be there and enabled. A citizen token Hoviyat mints for
    # the person itself names no registered client and carries neither claim.
    issued_to_client = "service_code" in claims or "gid" in claims
    if issued_to_client and (client is None or client.disabled):
        raise unauthorized("the client this access token was issued to is disabled or unknown")
    return claims, client, proof


async def require_client(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> Caller:
    claims, client, proof = _verified(request, hoviyat)
    # The claim marks a client's token; a login's token carries it too, and its
    # grant id (gid) besides. The policy and roles in force are the client's
    # current ones, so a change by an administrator applies to tokens already issued.
    if client is None or not isinstance(claims.get("service_code"), str):
        raise unauthorized("this token was not issued to a back-office client")
    if "gid" in claims:
        # A login's token acts for a person at userinfo; it names the client's service
        # too, so without this check it would also pass as the client itself, with
        # the client's roles, at the operator and back-office APIs (token confusion).
        raise unauthorized("this token was issued for a person's login, not to a client")
    policy = hoviyat.policies.get(client.service_code)
    if policy is None:
        raise unauthorized(f"service policy {client.service_code!r} of this client is gone")
    await spend_proof(hoviyat, proof)
    return Caller(
        client_id=client.client_id,
        service_code=policy.service_code,
        policy=policy,
        scopes=frozenset(str(claims.get("scope", "")).split()),
        roles=frozenset(client.roles),
        claims=claims,
    )


def require_role(*roles: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits a client holding any of ``roles``."""
    wanted = frozenset(roles)

    async def dependency(caller: Caller = Depends(require_client)) -> Caller:
        if not caller.roles & wanted:
            raise Problem(
                403,
                "role-required",
                "Forbidden",
                f"this operation needs one of the roles {sorted(wanted)}",
                required_roles=sorted(wanted),
            )
        return caller

    dependency.required_roles = wanted  # type: ignore[attr-defined]  # read by idp.http.openapi
    return dependency
