"""``/register``: dynamic client registration (RFC 7591 §3) and its management (RFC 7592).

The logic is in :mod:`idp.oidc.rfc7591` and :mod:`idp.oidc.rfc7592`; this router
reads the Bearer token and the JSON body and answers in OAuth's error format
(RFC 7591 §3.2.2), like /token and /par. The protocol routes are left out
of the OpenAPI document, as the ACME protocol's are: their bodies are the
RFCs' metadata documents, and a client reads ``registration_endpoint`` from
discovery, not an API description. The administrators' API for initial
access tokens and trusted software statement issuers is documented
(:mod:`idp.http.admin_registration`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.context import Hoviyat, get_hoviyat
from idp.oidc import rfc7591, rfc7592, software_statement
from idp.oidc.software_statement import Statement
from idp.storage import statement_issuers
from idp.storage.statement_issuers import StatementIssuer

router = APIRouter(tags=["openid-connect"], include_in_schema=False)
HoviyatDep = Annotated[Hoviyat, Depends(get_hoviyat)]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _bearer(request: Request) -> str:
    token = _optional_bearer(request)
    if token is None:
        raise rfc7591.invalid_token("a Bearer token is required")
    return token


def _optional_bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise rfc7591.invalid_token("a Bearer token is required")
    return token


def _columns(hoviyat: Hoviyat, meta: rfc7591.ClientMetadata) -> dict[str, Any]:
    settings = hoviyat.settings
    return rfc7591.attributes(
        meta, settings.sector_identifier_allow_http_loopback, settings.outbound_allow_loopback
    )


async def _metadata(
    request: Request, hoviyat: Hoviyat
) -> tuple[rfc7591.ClientMetadata, dict[str, Any]]:
    meta, _document = rfc7591.parse_metadata(await request.body())
    # In a worker thread: names are resolved and a sector identifier document fetched.
    columns = await run_in_threadpool(_columns, hoviyat, meta)
    return meta, columns


def _statement(hoviyat: Hoviyat, value: object) -> Statement:
    """The verified software statement (RFC 7591 §2.3); reads the trusted issuer."""

    def find_issuer(issuer: str) -> StatementIssuer | None:
        with hoviyat.db.read() as session:
            return statement_issuers.get(session, issuer)

    return software_statement.verify(value, find_issuer, time.time(), hoviyat.settings.issuer)


@router.post(rfc7591.PATH, status_code=201)
async def register(request: Request, hoviyat: HoviyatDep) -> JSONResponse:
    """RFC 7591 §3: an initial access token or a software statement (or both) and the
    client's metadata; 201 with its information."""
    token = _optional_bearer(request)
    document = rfc7591.parse_document(await request.body())
    statement = None
    if "software_statement" in document:
        # In a worker thread: a database read and a signature check.
        statement = await run_in_threadpool(_statement, hoviyat, document["software_statement"])
        document = software_statement.merged_metadata(document, statement)
    elif token is None:
        raise rfc7591.invalid_token("an initial access token or a software statement is required")
    meta = rfc7591.check_metadata(document)
    columns = await run_in_threadpool(_columns, hoviyat, meta)

    def write(session: Session) -> dict[str, Any]:
        answer, _client_id = rfc7591.register(
            session,
            hoviyat.secrets,
            hoviyat.policies,
            hoviyat.settings.issuer,
            initial_token=token,
            meta=meta,
            columns=columns,
            statement=statement,
        )
        return answer

    answer = await hoviyat.committer.run(write)
    return JSONResponse(answer, status_code=201, headers=_NO_STORE)


@router.get(rfc7591.PATH + "/{client_id}")
async def read(client_id: str, request: Request, hoviyat: HoviyatDep) -> JSONResponse:
    """RFC 7592 §2.1."""
    token = _bearer(request)

    def write(session: Session) -> dict[str, Any]:
        return rfc7592.read(session, hoviyat.secrets, hoviyat.settings.issuer, client_id, token)

    return JSONResponse(await hoviyat.committer.run(write), headers=_NO_STORE)


@router.put(rfc7591.PATH + "/{client_id}")
async def update(client_id: str, request: Request, hoviyat: HoviyatDep) -> JSONResponse:
    """RFC 7592 §2.2: a full replacement of the metadata, checked as at registration."""
    token = _bearer(request)
    meta, columns = await _metadata(request, hoviyat)

    def write(session: Session) -> dict[str, Any]:
        return rfc7592.update(
            session,
            hoviyat.secrets,
            hoviyat.policies,
            hoviyat.settings.issuer,
            client_id,
            token,
            meta=meta,
            columns=columns,
        )

    answer = await hoviyat.committer.run(write)
    hoviyat.client_directory.forget(client_id)
    return JSONResponse(answer, headers=_NO_STORE)


@router.delete(rfc7591.PATH + "/{client_id}", status_code=204)
async def delete(client_id: str, request: Request, hoviyat: HoviyatDep) -> Response:
    """RFC 7592 §2.3: the client is disabled and gets no more tokens."""
    token = _bearer(request)

    def write(session: Session) -> None:
        rfc7592.delete(session, hoviyat.secrets, hoviyat.policies, client_id, token)

    await hoviyat.committer.run(write)
    hoviyat.client_directory.forget(client_id)
    return Response(status_code=204, headers=_NO_STORE)
