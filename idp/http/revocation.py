"""Revocation and certificate status over HTTP.

- ``POST /v1/certificates/{serial}/revoke``: a CA operator's or administrator's
  bearer token; ``{"reason": "keyCompromise", "invalidity_date": ..., "comment": ...}``.
  200 with the revocation state, also when the certificate was already revoked
  (``already_revoked: true``, the first reason kept); 404 for a serial never
  issued; 400 for a reason RFC 5280 does not define or a future invalidity date.
- ``GET /crl/{name}.crl``: the current CRL, DER, ``application/pkix-crl``;
  ``{ca}[-g<n>][-p<k>][-delta].crl`` (see ``ca/crl.py``). Plain HTTP is expected
  (RFC 5280 section 4.2.1.13, the reverse proxy serves /crl without TLS).
- ``POST /ocsp`` (DER body) and ``GET /ocsp/{base64}`` (RFC 6960 appendix A),
  ``application/ocsp-response``. OCSP errors are OCSP responses (malformedRequest,
  unauthorized), not problem documents: OCSP clients read nothing else. POST
  is a plain Starlette route (left out of the OpenAPI document): it is the
  busiest path of a CA, and FastAPI's per-request machinery would double its cost.

The router is listed first in ``idp.features.FEATURES`` for the same reason:
routes are matched in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import ClientDisconnect

from ca.revocation import REVOCATION_REASONS, InvalidReason, parse_reason
from ca.rfc6960 import MalformedRequest, ResponseStatus, decode_get_path, error_response
from ca.serials import parse_serial
from idp.http.auth import Caller, require_role
from idp.http.schema import DateTimeParam, StrictModel
from idp.pki.crl_publisher import CRLPublisher, CRLUnavailable, UnknownCRL
from idp.pki.ocsp_responder import OCSPAnswer, OCSPService
from idp.pki.revocation import (
    Actor,
    CertificateNotFound,
    RevocationRefused,
    issuers_touched,
    revoke,
)
from idp.pki.service import built_once, get_pki
from idp.pki.status_settings import StatusSettings
from idp.problems import Problem, bad_request, not_found

router = APIRouter()
operators = require_role("ca_operator", "admin")
OperatorDep = Annotated[Caller, Depends(operators)]

CRL_MEDIA_TYPE = "application/pkix-crl"
OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"
MAX_OCSP_REQUEST_BYTES = 8192
"""A request for 16 certificate IDs with a nonce is well under 2 KB."""


@dataclass
class StatusServices:
    publisher: CRLPublisher
    ocsp: OCSPService


def _build_status(request: Request) -> StatusServices:
    pki = get_pki(request)
    settings = StatusSettings()
    return StatusServices(
        CRLPublisher(pki.db, pki.hierarchy, settings),
        OCSPService(pki.db, pki.hierarchy, settings),
    )


async def get_status_services(request: Request) -> StatusServices:
    """The app's CRL publisher and OCSP responder, sharing the PKI's CA hierarchy.

    Async on purpose: a sync dependency costs a thread-pool hop on every OCSP
    request, and building the services only opens the key store (no signing).
    """
    return built_once(request.app.state, "hoviyat_status", _build_status, request)


StatusDep = Annotated[StatusServices, Depends(get_status_services)]


class RevocationIn(StrictModel):
    # An unknown field is a request the CA would silently not honour: 422, never ignored.
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        ...,
        max_length=40,
        description="RFC 5280 reason name: " + ", ".join(REVOCATION_REASONS),
    )
    invalidity_date: DateTimeParam | None = Field(
        None, description="when the key was known or suspected compromised (RFC 5280 5.3.2)"
    )
    comment: str | None = Field(None, max_length=500, description="why; kept in the audit log")


@router.post("/v1/certificates/{serial}/revoke", tags=["certificates"])
def revoke_certificate(
    serial: str,
    body: RevocationIn,
    caller: OperatorDep,
    services: StatusDep,
    background: BackgroundTasks,
) -> dict[str, object]:
    number = parse_serial(serial)
    if number is None:
        raise bad_request("invalid-serial", f"{serial!r} is not a hexadecimal serial number")
    try:
        reason = parse_reason(body.reason)
    except InvalidReason as exc:
        raise bad_request("invalid-reason", str(exc), allowed=list(REVOCATION_REASONS)) from None
    actor = Actor("client", caller.client_id, body.comment)
    try:
        outcome = revoke(
            services.publisher.db, number, reason, actor, invalidity_date=body.invalidity_date
        )
    except CertificateNotFound as exc:
        raise not_found(str(exc)) from None
    except RevocationRefused as exc:
        raise bad_request("revocation-refused", str(exc)) from None
    if not outcome.already_revoked or outcome.also_revoked:
        touched = issuers_touched(
            services.publisher.db, [outcome.certificate.serial_hex, *outcome.also_revoked]
        )
        background.add_task(services.publisher.reissue_after_revocation, touched)
    return outcome.as_dict()


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@router.get("/crl/{file_name}", tags=["certificate status"], response_class=Response)
def get_crl(file_name: str, services: StatusDep) -> Response:
    if not file_name.endswith(".crl"):
        raise not_found("CRLs are published as /crl/<name>.crl")
    publisher = services.publisher
    try:
        record = publisher.current(publisher.resolve(file_name.removesuffix(".crl")))
    except UnknownCRL as exc:
        raise not_found(str(exc)) from None
    except CRLUnavailable as exc:
        raise Problem(
            503, "crl-unavailable", "Service unavailable", str(exc), headers={"Retry-After": "60"}
        ) from None
    return Response(
        record.der,
        media_type=CRL_MEDIA_TYPE,
        headers={
            "Last-Modified": _http_date(record.this_update),
            "Expires": _http_date(record.next_update),
            # short: a revocation reissues the CRL, and relying parties should see it
            "Cache-Control": "public, max-age=300, no-transform",
            "ETag": f'"{record.issuer_key_id[:16]}-{record.partition}-{record.crl_number}"',
        },
    )


def _ocsp_response(answer: OCSPAnswer) -> Response:
    headers = {}
    if answer.cacheable and answer.produced_at and answer.next_update:
        # RFC 5019 section 6.2: caching headers for GET answers without nonce.
        remaining = int((answer.next_update - datetime.now(UTC)).total_seconds())
        headers = {
            "Last-Modified": _http_date(answer.produced_at),
            "Expires": _http_date(answer.next_update),
            "Cache-Control": f"max-age={max(0, min(remaining, 300))}, public, no-transform",
        }
    else:
        headers = {"Cache-Control": "no-store"}
    return Response(answer.der, media_type=OCSP_RESPONSE_MEDIA_TYPE, headers=headers)


def _malformed() -> Response:
    return Response(
        error_response(ResponseStatus.malformed_request), media_type=OCSP_RESPONSE_MEDIA_TYPE
    )


async def ocsp_post(request: Request) -> Response:
    """POST /ocsp: a plain Starlette route, without FastAPI's dependency and body machinery.

    The busiest endpoint of a CA: relying parties ask for every certificate they
    see. Everything else here is an ordinary FastAPI route.
    """
    services = await get_status_services(request)
    try:
        body = await request.body()
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read an answer
    if len(body) > MAX_OCSP_REQUEST_BYTES:
        return _malformed()
    if services.ocsp.ready:
        # Loaded responders: a row read and at most one P-256 signature, cheaper
        # than the hop to the thread pool.
        return _ocsp_response(services.ocsp.respond(body))
    # The first request loads (and may issue) the responder certificates.
    return _ocsp_response(await run_in_threadpool(services.ocsp.respond, body))


router.add_route("/ocsp", ocsp_post, methods=["POST"], include_in_schema=False)
# Answered before FastAPI's router too (idp.http.direct, listed in idp.features);
# the route above names it in metrics.


class _AnyPath(PathConvertor):
    """Starlette's ``path`` stops at a newline (``.*``); a GET request whose
    percent-decoded path holds one must reach the responder and be answered
    malformedRequest (RFC 6960 §2.3), not fall through to 404."""

    regex = r"[\s\S]*"


register_url_convertor("ocsp_request", _AnyPath())


@router.get("/ocsp/{encoded:ocsp_request}", tags=["certificate status"], response_class=Response)
def ocsp_get(encoded: str, services: StatusDep) -> Response:
    if len(encoded) > MAX_OCSP_REQUEST_BYTES * 2:
        return _malformed()
    try:
        der = decode_get_path(encoded)
    except MalformedRequest:
        return _malformed()
    return _ocsp_response(services.ocsp.respond(der))
