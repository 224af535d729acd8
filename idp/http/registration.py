"""``/register``: dynamic client registration (RFC 7591 §3) and its management (RFC 7592).

The logic is in :mod:`idp.oidc.rfc7591` and :mod:`idp.oidc.rfc7592`; this router
reads the Bearer token and the JSON body and answers in OAuth's error format
(RFC 7591 §3.2.2), like /token and /par. The routes are left out of the
OpenAPI document, as the ACME protocol's are: their bodies are the RFCs'
metadata documents, and a client reads ``registration_endpoint`` from
discovery, not an API description.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.context import Hoviyat, get_hoviyat
from idp.oidc import rfc7591, rfc7592

router = APIRouter(tags=["openid-connect"], include_in_schema=False)
HoviyatDep = Annotated[Hoviyat, Depends(get_hoviyat)]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise rfc7591.invalid_token("a Bearer token is required")
    return token


async def _metadata(
    request: Request, hoviyat: Hoviyat
) -> tuple[rfc7591.ClientMetadata, dict[str, Any]]:
    meta, _document = rfc7591.parse_metadata(await request.body())
    # In a worker thread: a sector identifier document is fetched over the network.
    columns = await run_in_threadpool(
        rfc7591.attributes, meta, hoviyat.settings.sector_identifier_allow_http_loopback
    )
    return meta, columns


@router.post(rfc7591.PATH, status_code=201)
async def register(request: Request, hoviyat: HoviyatDep) -> JSONResponse:
    """RFC 7591 §3: an initial access token and the client's metadata; 201 with its information."""
    token = _bearer(request)
    meta, columns = await _metadata(request, hoviyat)

    def write(session: Session) -> dict[str, Any]:
        answer, _client_id = rfc7591.register(
            session,
            hoviyat.secrets,
            hoviyat.policies,
            hoviyat.settings.issuer,
            initial_token=token,
            meta=meta,
            columns=columns,
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
