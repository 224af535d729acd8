"""Admin API for OAuth clients: what ``hoviyat clients`` does, over HTTP.

Only a client holding the ``admin`` role may call it. Every change writes a
``client_changed`` audit entry in the same transaction; a new client's secret
is in the creation answer and nowhere else.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.audit.log import append
from idp.clients import ClientError, client_summary, create_client, list_clients
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_role
from idp.http.schema import StrictModel
from idp.oidc.registration import SECRETLESS_METHODS, RegistrationError, oidc_attributes
from idp.problems import Problem, not_found
from idp.storage import clients as store
from idp.tracking import new_tracking_code

router = APIRouter(prefix="/v1/admin/clients", tags=["administration"])
require_admin = require_role("admin")


class ClientRegistration(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    service_code: str = Field(max_length=64)
    roles: list[str] = Field(default_factory=list, max_length=10)
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    grant_types: list[str] = Field(default_factory=list, max_length=3)
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105
    id_token_signed_response_alg: str = "ES256"  # noqa: S105
    sector_identifier: str | None = Field(default=None, max_length=255)
    jwks: dict[str, Any] | None = None
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    dpop_bound_access_tokens: bool = False
    profile: Literal["fapi2"] | None = None  # FAPI 2.0 Security Profile (idp.oidc.fapi2)
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    # RFC 8705 §2.1.2, §3.4: mutual-TLS client authentication and bound tokens.
    tls_client_auth_subject_dn: str | None = Field(default=None, max_length=1000)
    tls_client_certificate_bound_access_tokens: bool = False


def _audit(session: Session, caller: Caller, client_id: str, operation: str) -> None:
    event = caller.audit_event(
        tracking_code=new_tracking_code(),
        event_type="client_changed",
        actor_type="administrator",
        operation=operation,
        outcome="ok",
        detail={"client_id": client_id},
    )
    append(session, event)


def _invalid(error: Exception) -> Problem:
    return Problem(422, "invalid-client-registration", "Invalid client registration", str(error))


@router.get("")
def list_all(
    _caller: Caller = Depends(require_admin), hoviyat: Hoviyat = Depends(get_hoviyat)
) -> list[dict[str, Any]]:
    with hoviyat.db.read() as session:
        return [client_summary(client) for client in list_clients(session)]


@router.post("", status_code=201)
async def create(
    body: ClientRegistration,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> JSONResponse:
    try:
        # In a worker thread: a sector identifier document is fetched over the network.
        attributes = await run_in_threadpool(
            oidc_attributes,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            grant_types=body.grant_types,
            auth_method=body.token_endpoint_auth_method,
            id_token_alg=body.id_token_signed_response_alg,
            sector_identifier=body.sector_identifier,
            jwks=body.jwks,
            allow_http_loopback_sector=hoviyat.settings.sector_identifier_allow_http_loopback,
            require_pushed_authorization_requests=body.require_pushed_authorization_requests,
            require_signed_request_object=body.require_signed_request_object,
            dpop_bound_access_tokens=body.dpop_bound_access_tokens,
            profile=body.profile,
            backchannel_logout_uri=body.backchannel_logout_uri,
            tls_client_auth_subject_dn=body.tls_client_auth_subject_dn,
            tls_client_certificate_bound_access_tokens=body.tls_client_certificate_bound_access_tokens,
        )
    except RegistrationError as error:
        raise _invalid(error) from None

    def write(session: Session) -> dict[str, Any]:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name=body.name,
            service_code=body.service_code,
            roles=body.roles,
            with_secret=body.token_endpoint_auth_method not in SECRETLESS_METHODS,
            **attributes,
        )
        _audit(session, caller, created.client.client_id, "create")
        return {**client_summary(created.client), "client_secret": created.client_secret}

    try:
        answer = await hoviyat.committer.run(write)
    except ClientError as error:
        raise _invalid(error) from None
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/{client_id}")
def read(
    client_id: str,
    _caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    with hoviyat.db.read() as session:
        client = store.get_client(session, client_id)
        if client is None:
            raise not_found(f"no client {client_id!r}")
        return client_summary(client)


@router.post("/{client_id}/disable")
async def disable(
    client_id: str,
    caller: Caller = Depends(require_admin),
    hoviyat: Hoviyat = Depends(get_hoviyat),
) -> dict[str, Any]:
    """Stop the client: no new tokens, and the tokens it holds are refused within 1 s."""

    def write(session: Session) -> dict[str, Any]:
        client = store.get_client(session, client_id)
        if client is None:
            raise not_found(f"no client {client_id!r}")
        if store.set_disabled(session, client):
            _audit(session, caller, client_id, "disable")
        return client_summary(client)

    summary = await hoviyat.committer.run(write)
    hoviyat.client_directory.forget(client_id)
    return summary
