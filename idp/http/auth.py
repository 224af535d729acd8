"""Bearer-token authentication for the API (RFC 6750) and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from idp.context import Hoviyat, get_hoviyat
from idp.oauth.rfc9068 import verify_access_token
from idp.problems import Problem, credentials_required, forbidden, unauthorized
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


def token_claims(request: Request, hoviyat: Hoviyat) -> dict[str, Any]:
    try:
        return verify_access_token(
            hoviyat.keyring, bearer_token(request), issuer=hoviyat.settings.issuer
        )
    except TokenError as exc:
        raise unauthorized(f"access token rejected: {exc}") from None


async def require_client(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> Caller:
    claims = token_claims(request, hoviyat)
    service_code = claims.get("service_code")
    policy = hoviyat.policies.get(service_code) if isinstance(service_code, str) else None
    if policy is None:
        raise unauthorized("this token was not issued to a back-office client")
    return Caller(
        client_id=str(claims.get("client_id")),
        service_code=policy.service_code,
        policy=policy,
        scopes=frozenset(str(claims.get("scope", "")).split()),
        roles=frozenset(claims.get("roles") or []),
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

    return dependency
