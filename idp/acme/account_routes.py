"""Directory, newNonce, accounts and key rollover (RFC 8555 §7.1-7.3).

``/acme/<ca>/`` serves an issuing CA that issues at least one of the ACME
profiles (``HOVIYAT_ACME_PROFILES``); any other ``<ca>`` is a 404 problem.
The account's orders list (``account/<id>/orders``) is the orders part's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from idp.acme import accounts
from idp.acme.paths import PREFIX
from idp.acme.requests import acme_post, acme_post_with_jwk
from idp.acme.responses import acme_headers, acme_json
from idp.acme.server import acme_server

router = APIRouter(tags=["acme"])


@router.get(PREFIX + "/directory")
async def directory(request: Request, ca: str) -> JSONResponse:
    """The directory (§7.1.1): every resource URL, and EAB required."""
    server = acme_server(request)
    paths = server.paths(ca)
    body: dict[str, Any] = {
        "newNonce": paths.new_nonce,
        "newAccount": paths.new_account,
        "newOrder": paths.new_order,
        "revokeCert": paths.revoke_cert,
        "keyChange": paths.key_change,
        "renewalInfo": paths.renewal_info,
        "meta": {
            "externalAccountRequired": True,
            # draft-ietf-acme-profiles: the profiles this CA's orders may name.
            "profiles": {name: server.profiles[name] for name in server.cas[ca]},
            "website": server.hoviyat.settings.issuer,
        },
    }
    # The directory is the same for everyone and changes only with a deployment.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


def _nonce(request: Request, ca: str, status: int) -> Response:
    paths = acme_server(request).paths(ca)
    return Response(status_code=status, headers=acme_headers(request, paths))


@router.head(PREFIX + "/new-nonce")
async def new_nonce_head(request: Request, ca: str) -> Response:
    """newNonce (§7.2): HEAD answers 200; the nonce is in Replay-Nonce."""
    return _nonce(request, ca, 200)


@router.get(PREFIX + "/new-nonce", status_code=204)
async def new_nonce_get(request: Request, ca: str) -> Response:
    """newNonce (§7.2): GET answers 204; the nonce is in Replay-Nonce."""
    return _nonce(request, ca, 204)


def _answer(request: Request, answer: accounts.Answer, paths: Any) -> JSONResponse:
    return acme_json(request, paths, answer.body, answer.status, location=answer.location)


@router.post(PREFIX + "/new-account")
async def new_account(request: Request, ca: str) -> JSONResponse:
    """newAccount (§7.3): 201 with the new account, 200 with the key's existing one."""
    post = await acme_post_with_jwk(request, ca)
    answer = await accounts.new_account(acme_server(request), post)
    return _answer(request, answer, post.paths)


@router.post(PREFIX + "/account/{account_id}")
async def account(request: Request, ca: str, account_id: str) -> JSONResponse:
    """The account (§7.3.2, §7.3.6): POST-as-GET reads it; a payload updates or deactivates."""
    post = await acme_post(request, ca)
    answer = await accounts.update_account(acme_server(request), post, account_id)
    return _answer(request, answer, post.paths)


@router.post(PREFIX + "/key-change")
async def key_change(request: Request, ca: str) -> JSONResponse:
    """Account key rollover (§7.3.5)."""
    post = await acme_post(request, ca)
    answer = await accounts.change_key(acme_server(request), post)
    return _answer(request, answer, post.paths)
