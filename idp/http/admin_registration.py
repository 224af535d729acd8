"""Admin API for dynamic client registration (RFC 7591): what ``hoviyat clients
initial-token`` and ``hoviyat clients statement-issuer`` do, over HTTP.

Only a client holding the ``admin`` role may call it. An initial access token
is in its creation answer and nowhere else (it is stored as a keyed digest);
it is listed and revoked by its public id. A trusted software statement
issuer binds an issuer's public keys to a legal entity and a service policy.
Every creation and revocation writes an audit entry naming the entity (by its
hash), in the same transaction.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.audit.log import append
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_role
from idp.http.schema import StrictModel
from idp.oidc import rfc7591, statement_issuers
from idp.problems import Problem, not_found, service_unavailable
from idp.storage import registrations
from idp.storage import statement_issuers as issuer_store
from verifiers.registry import RegistryUnavailable

router = APIRouter(prefix="/v1/clients", tags=["administration"])
require_admin = require_role("admin")
_NO_STORE = {"Cache-Control": "no-store"}


class InitialTokenRequest(StrictModel):
    national_id: str = Field(min_length=1, max_length=32)
    service_code: str = Field(min_length=1, max_length=64)
    expires_in: int = Field(default=rfc7591.DEFAULT_LIFETIME, ge=60, le=rfc7591.MAX_LIFETIME)


class PublicJwks(StrictModel):
    """A JWKS of public keys; each key is checked when the issuer is added."""

    keys: list[dict[str, Any]] = Field(min_length=1, max_length=10)


class StatementIssuerRequest(StrictModel):
    issuer: str = Field(min_length=1, max_length=statement_issuers.MAX_ISSUER_LENGTH)
    jwks: PublicJwks
    national_id: str = Field(min_length=1, max_length=32)
    service_code: str = Field(min_length=1, max_length=64)


class IssuerRevocation(StrictModel):
    issuer: str = Field(min_length=1, max_length=statement_issuers.MAX_ISSUER_LENGTH)


def _invalid(error: Exception, what: str) -> Problem:
    slug = what.lower().replace(" ", "-")
    return Problem(422, f"invalid-{slug}", f"Invalid {what}", str(error))


async def _entity(hoviyat: Hoviyat, national_id: str, service_code: str, what: str) -> str:
    try:
        # In a worker thread: the deeds registry may be a remote service.
        return await run_in_threadpool(
            rfc7591.check_request, hoviyat.registries, hoviyat.policies, national_id, service_code
        )
    except rfc7591.InitialTokenError as error:
        raise _invalid(error, what) from None
    except RegistryUnavailable as error:
        raise service_unavailable(f"the deeds registry cannot answer now: {error}") from None


# -- initial access tokens (RFC 7591 §3) ----------------------------------------------


@router.post("/initial-tokens", status_code=201)
async def create_initial_token(
    body: InitialTokenRequest,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> JSONResponse:
    """A single-use token for a registered legal entity and a service policy that allows
    logins; the token is shown in this answer only."""
    national_id = await _entity(hoviyat, body.national_id, body.service_code, "initial token")

    def write(session: Session) -> dict[str, Any]:
        token, row = rfc7591.create_initial_token(
            session,
            hoviyat.secrets,
            national_id=national_id,
            service_code=body.service_code,
            created_by=f"client:{caller.client_id}",
            expires_in=body.expires_in,
        )
        event = rfc7591.audit_event(
            hoviyat.secrets,
            hoviyat.policies,
            event_type=rfc7591.TOKEN_EVENT_TYPE,
            operation="create",
            national_id=national_id,
            service_code=body.service_code,
            actor_type="administrator",
            actor_id=caller.client_id,
            detail={"id": rfc7591.token_id(row), "expires_at": row.expires_at.isoformat()},
        )
        append(session, event)
        return {
            **rfc7591.token_summary(row),
            "initial_access_token": token,
            "registration_endpoint": hoviyat.settings.issuer.rstrip("/") + rfc7591.PATH,
        }

    answer = await hoviyat.committer.run(write)
    return JSONResponse(answer, status_code=201, headers=_NO_STORE)


@router.get("/initial-tokens")
def list_initial_tokens(
    _caller: Caller = Depends(require_admin), hoviyat: Hoviyat = Depends(get_hoviyat)
) -> list[dict[str, Any]]:
    """Every token's state, never the token (only its keyed digest is kept)."""
    with hoviyat.db.read() as session:
        return [rfc7591.token_summary(row) for row in registrations.list_initial_tokens(session)]


@router.delete("/initial-tokens/{token_id}")
async def revoke_initial_token(
    token_id: str,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    """Revoke an unused token: it registers no client after this answer."""

    def write(session: Session) -> dict[str, Any]:
        try:
            row = rfc7591.revoke_initial_token(session, token_id)
        except rfc7591.TokenNotFound:
            raise not_found(f"no initial access token {token_id!r}") from None
        except rfc7591.InitialTokenError as error:
            raise Problem(409, "initial-token-spent", "Used or revoked", str(error)) from None
        event = rfc7591.audit_event(
            hoviyat.secrets,
            hoviyat.policies,
            event_type=rfc7591.TOKEN_EVENT_TYPE,
            operation="revoke",
            national_id=row.national_id,
            service_code=row.service_code,
            actor_type="administrator",
            actor_id=caller.client_id,
            detail={"id": token_id},
        )
        append(session, event)
        return rfc7591.token_summary(row)

    answer: dict[str, Any] = await hoviyat.committer.run(write)
    return answer


# -- trusted software statement issuers (RFC 7591 §2.3) -------------------------------


@router.post("/statement-issuers", status_code=201)
async def add_statement_issuer(
    body: StatementIssuerRequest,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> JSONResponse:
    """Trust an issuer's statements for a registered legal entity and a service policy."""
    national_id = await _entity(hoviyat, body.national_id, body.service_code, "statement issuer")

    def write(session: Session) -> dict[str, Any]:
        try:
            row = statement_issuers.add(
                session,
                issuer=body.issuer,
                jwks=body.jwks.model_dump(),
                national_id=national_id,
                service_code=body.service_code,
                created_by=f"client:{caller.client_id}",
            )
        except statement_issuers.IssuerError as error:
            raise _invalid(error, "statement issuer") from None
        event = statement_issuers.audit_event(
            hoviyat.secrets, hoviyat.policies, row, "add", actor_id=caller.client_id
        )
        append(session, event)
        return statement_issuers.summary(row)

    answer = await hoviyat.committer.run(write)
    return JSONResponse(answer, status_code=201)


@router.get("/statement-issuers")
def list_statement_issuers(
    _caller: Caller = Depends(require_admin), hoviyat: Hoviyat = Depends(get_hoviyat)
) -> list[dict[str, Any]]:
    with hoviyat.db.read() as session:
        return [statement_issuers.summary(row) for row in issuer_store.list_all(session)]


@router.post("/statement-issuers/revoke")
async def revoke_statement_issuer(
    body: IssuerRevocation,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    """Stop trusting an issuer: its statements are refused from this answer on.
    (A POST with the issuer in the body: an issuer is usually a URL, awkward in a path.)"""

    def write(session: Session) -> dict[str, Any]:
        try:
            row = statement_issuers.revoke(session, body.issuer)
        except statement_issuers.IssuerNotFound:
            raise not_found(f"no statement issuer {body.issuer!r}") from None
        except statement_issuers.IssuerError as error:
            raise Problem(409, "statement-issuer-revoked", "Already revoked", str(error)) from None
        event = statement_issuers.audit_event(
            hoviyat.secrets, hoviyat.policies, row, "revoke", actor_id=caller.client_id
        )
        append(session, event)
        return statement_issuers.summary(row)

    answer: dict[str, Any] = await hoviyat.committer.run(write)
    return answer
