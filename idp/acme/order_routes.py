"""Orders, authorizations, challenges, finalize, download, revocation (RFC 8555 §7.4-7.6).

Each route verifies the JWS first (:func:`idp.acme.requests.acme_post`), then
hands the account to one module: :mod:`idp.acme.orders` (newOrder, the order
and the account's list), :mod:`idp.acme.authorizations` (authorizations and
challenges), :mod:`idp.acme.finalize`, :mod:`idp.acme.order_certificates`,
:mod:`idp.acme.revocation`. Database work runs in worker threads; validation
runs after the challenge's answer is sent (a background task), so the event
loop never waits on either.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import anyio
from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from idp.acme import authorizations as authz_module
from idp.acme.finalize import finalize
from idp.acme.order_certificates import MEDIA_TYPE, certificate_chain_pem
from idp.acme.order_documents import (
    authorization_document,
    challenge_document,
    challenge_stale,
    order_document,
)
from idp.acme.order_requests import parse_order_request, refused_by_policy
from idp.acme.orders import account_orders, audit_refusal, create_order, owned_order
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount, AcmePost, acme_post, acme_post_with_jwk
from idp.acme.responses import acme_headers, acme_json
from idp.acme.revocation import revoke_certificate
from idp.acme.rfc9773 import check_replaces
from idp.acme.server import acme_server
from idp.pki.service import get_pki

router = APIRouter(tags=["acme"])
ACCOUNT_ORDERS_LIMIT = 1000


def _account(post: AcmePost) -> AcmeAccount:
    if post.account is None:
        raise AcmeProblem("malformed", "this resource takes a kid (the account URL), not a jwk")
    if post.account.status != "valid":
        raise AcmeProblem("unauthorized", f"the account is {post.account.status}", 403)
    return post.account


def _as_get(post: AcmePost) -> None:
    if post.payload is not None:
        raise AcmeProblem("malformed", "this resource is read with POST-as-GET (empty payload)")


@router.post("/acme/{ca}/new-order")
async def new_order(ca: str, request: Request) -> Response:
    """§7.4: an order for DNS names the entity's policy allows."""
    post = await acme_post(request, ca)
    account = _account(post)
    server = acme_server(request)
    hoviyat = server.hoviyat
    offered = server.cas.get(ca, ())
    wanted = parse_order_request(post.payload, hoviyat.acme_settings, offered)
    pepper = hoviyat.secrets.subject_pepper
    refusal = refused_by_policy(hoviyat.policies.get(account.service_code), wanted.names)
    if refusal is not None:
        await anyio.to_thread.run_sync(audit_refusal, hoviyat.db, account, pepper, ca, refusal)
        raise refusal
    if wanted.replaces is not None:
        cert_id = await anyio.to_thread.run_sync(
            check_replaces, hoviyat.db, account, wanted.replaces, wanted.names
        )
        wanted = replace(wanted, replaces=str(cert_id))
    order, authz_ids = await anyio.to_thread.run_sync(
        create_order,
        hoviyat.db,
        account,
        ca,
        wanted,
        hoviyat.acme_settings,
        pepper,
        datetime.now(UTC),
    )
    body = order_document(post.paths, order, authz_ids)
    return acme_json(request, post.paths, body, 201, location=post.paths.order(order.id))


@router.post("/acme/{ca}/order/{order_id}")
async def order(ca: str, order_id: str, request: Request) -> Response:
    """§7.1.3: the order as it stands (POST-as-GET)."""
    post = await acme_post(request, ca)
    account = _account(post)
    _as_get(post)
    db = acme_server(request).hoviyat.db
    found, authz_ids = await anyio.to_thread.run_sync(owned_order, db, order_id, account, ca)
    response = acme_json(request, post.paths, order_document(post.paths, found, authz_ids))
    if found.status == "processing":
        response.headers["Retry-After"] = "1"
    return response


@router.post("/acme/{ca}/order/{order_id}/finalize")
async def finalize_order(ca: str, order_id: str, request: Request) -> Response:
    """§7.4: a CSR for exactly the order's names; the certificate is issued at once."""
    post = await acme_post(request, ca)
    account = _account(post)
    hoviyat = acme_server(request).hoviyat
    pki = await anyio.to_thread.run_sync(get_pki, request)
    done, authz_ids = await finalize(
        hoviyat.db, pki, account, hoviyat.secrets.subject_pepper, order_id, ca, post.payload
    )
    body = order_document(post.paths, done, authz_ids)
    return acme_json(request, post.paths, body, location=post.paths.order(done.id))


@router.post("/acme/{ca}/account/{account_id}/orders")
async def orders_of_account(ca: str, account_id: str, request: Request) -> Response:
    """§7.1.2.1: the account's orders that are not invalid, newest first."""
    post = await acme_post(request, ca)
    account = _account(post)
    _as_get(post)
    if account_id != account.id:
        raise AcmeProblem("unauthorized", "another account's orders are not listed", 403)
    db = acme_server(request).hoviyat.db
    ids = await anyio.to_thread.run_sync(account_orders, db, account, ca, ACCOUNT_ORDERS_LIMIT)
    return acme_json(request, post.paths, {"orders": [post.paths.order(i) for i in ids]})


@router.post("/acme/{ca}/authz/{authz_id}")
async def authorization(ca: str, authz_id: str, request: Request) -> Response:
    """§7.5: read an authorization (POST-as-GET) or deactivate it (§7.5.2)."""
    post = await acme_post(request, ca)
    account = _account(post)
    hoviyat = acme_server(request).hoviyat
    db, settings = hoviyat.db, hoviyat.acme_settings
    found, challenges = await anyio.to_thread.run_sync(
        authz_module.owned_authorization, db, authz_id, account, ca
    )
    jobs: list[authz_module.ValidationJob] = []
    if post.payload is not None:
        if post.payload != {"status": "deactivated"}:
            raise AcmeProblem("malformed", 'an authorization takes only {"status": "deactivated"}')
        await anyio.to_thread.run_sync(authz_module.deactivate, db, found)
    else:
        now = datetime.now(UTC)
        jobs = await anyio.to_thread.run_sync(
            authz_module.reclaim_stale, db, found, challenges, account, settings, now
        )
    if post.payload is not None or jobs:
        # Only what this request wrote needs reading again; a plain read answers
        # with the rows it already holds (one read transaction, not two).
        found, challenges = await anyio.to_thread.run_sync(
            authz_module.owned_authorization, db, authz_id, account, ca
        )
    body = authorization_document(post.paths, found, challenges, datetime.now(UTC))
    response = acme_json(request, post.paths, body)
    if jobs:
        response.background = BackgroundTask(authz_module.run_validations, db, jobs, settings)
    return response


@router.post("/acme/{ca}/challenge/{challenge_id}")
async def challenge(ca: str, challenge_id: str, request: Request) -> Response:
    """§7.5.1: ``{}`` asks for validation (once); POST-as-GET reads the challenge."""
    post = await acme_post(request, ca)
    account = _account(post)
    hoviyat = acme_server(request).hoviyat
    db, settings = hoviyat.db, hoviyat.acme_settings
    found, authz = await anyio.to_thread.run_sync(
        authz_module.owned_challenge, db, challenge_id, account, ca
    )
    now = datetime.now(UTC)
    job = None
    if post.payload is not None or challenge_stale(found, now):
        job = await anyio.to_thread.run_sync(
            authz_module.claim, db, found, authz, account, settings, now
        )
        if job is not None:
            found = job.challenge  # as claimed: not read back (one transaction fewer)
    body = challenge_document(post.paths, found, now)
    response = acme_json(
        request, post.paths, body, links=[(post.paths.authorization(authz.id), "up")]
    )
    if job is not None:
        response.background = BackgroundTask(authz_module.run_validation, db, job, settings)
    return response


@router.post("/acme/{ca}/certificate/{certificate_id}")
async def certificate(ca: str, certificate_id: str, request: Request) -> Response:
    """§7.4.2: the certificate chain, leaf first, without the root."""
    post = await acme_post(request, ca)
    account = _account(post)
    _as_get(post)
    db = acme_server(request).hoviyat.db
    pki = await anyio.to_thread.run_sync(get_pki, request)
    pem = await anyio.to_thread.run_sync(
        certificate_chain_pem, db, pki, certificate_id, account, ca
    )
    return Response(pem, media_type=MEDIA_TYPE, headers=acme_headers(request, post.paths))


@router.post("/acme/{ca}/revoke-cert")
async def revoke_cert(ca: str, request: Request) -> Response:
    """§7.6: by the ordering account (kid) or by the certificate's key (jwk)."""
    post = await acme_post_with_jwk(request, ca)
    db = acme_server(request).hoviyat.db
    await anyio.to_thread.run_sync(revoke_certificate, db, post, ca)
    return Response(status_code=200, headers=acme_headers(request, post.paths))
