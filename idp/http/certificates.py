"""Certificate issuance over HTTP and the CA certificates at their AIA URLs.

- ``POST /v1/certificates``: a CSR (PEM), a profile and a subject reference; an
  administrator's or CA operator's bearer token. 201 with the chain, or an RFC
  9457 problem saying which check refused it (nothing is written then).
- ``GET /v1/certificates/{serial}``: the record and the certificate.
- ``GET /ca/{publication}.crt``: a CA certificate, DER, ``application/pkix-cert``
  (the AIA caIssuers URL, RFC 5280 section 4.2.2.1).
"""

from __future__ import annotations

from typing import Annotated, Any

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Response
from pydantic import ConfigDict, Field

from ca.serials import parse_serial, serial_hex
from idp.http.auth import Caller, require_role
from idp.http.schema import StrictModel
from idp.pki.documents import certificate_document
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.service import get_pki
from idp.pki.subjects import SubjectReference
from idp.problems import Problem, bad_request, not_found

router = APIRouter(tags=["certificates"])
operators = require_role("ca_operator", "admin")
readers = require_role("ca_operator", "admin", "auditor")
OperatorDep = Annotated[Caller, Depends(operators)]
ReaderDep = Annotated[Caller, Depends(readers)]
PkiDep = Annotated[Pki, Depends(get_pki)]


class SubjectIn(StrictModel):
    # An unknown field (validity_days, extensions...) is a request the CA would
    # otherwise silently not honour: refused with 422, never ignored.
    model_config = ConfigDict(extra="forbid")

    national_code: str | None = Field(None, max_length=40)
    national_id: str | None = Field(None, max_length=40)
    dns_names: list[str] = Field(default_factory=list, max_length=100)
    service_name: str | None = Field(None, max_length=200)


class CertificateRequestIn(StrictModel):
    model_config = ConfigDict(extra="forbid")

    csr: str = Field(..., max_length=65536, description="PKCS#10 request, PEM")
    profile: str = Field(..., max_length=60)
    subject: SubjectIn = Field(default_factory=lambda: SubjectIn())
    issuing_ca: str | None = Field(None, max_length=40)
    reason: str | None = Field(None, max_length=500, description="why; kept in the audit log")


def _problem(refusal: CertificateRefused) -> Problem:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
    titles = {
        400: "Certificate request refused",
        403: "Profile not issued through this API",
        409: "Conflict",
        422: "Lint failed",
    }
    return Problem(
        refusal.status,
        refusal.slug,
        titles.get(refusal.status, "Service unavailable"),
        refusal.detail,
        headers=headers,
    )


@router.post("/v1/certificates", status_code=201)
def issue_certificate(
    body: CertificateRequestIn,
    response: Response,
    caller: OperatorDep,
    pki: PkiDep,
) -> dict[str, Any]:
    request = Request(
        csr=body.csr,
        profile=body.profile,
        subject=SubjectReference(
            national_code=body.subject.national_code,
            national_id=body.subject.national_id,
            dns_names=tuple(body.subject.dns_names),
            service_name=body.subject.service_name,
        ),
        requested_by=caller.client_id,
        request_reason=body.reason,
        actor_type="client",
        issuing_ca=body.issuing_ca,
    )
    try:
        order = pki.prepare(request)
        issued = pki.issue_orders([order])[0]
    except CertificateRefused as refusal:
        raise _problem(refusal) from None
    response.headers["Location"] = f"/v1/certificates/{issued.serial_hex}"
    return {
        "serial": issued.serial_hex,
        "status": "issued",
        "profile": body.profile,
        "tracking_code": order.tracking_code,
        "not_before": issued.certificate.not_valid_before_utc.isoformat(),
        "not_after": issued.certificate.not_valid_after_utc.isoformat(),
        "certificate": issued.certificate.public_bytes(Encoding.PEM).decode(),
        "chain": [c.public_bytes(Encoding.PEM).decode() for c in issued.chain],
    }


@router.get("/v1/certificates/{serial}")
def get_certificate(serial: str, _caller: ReaderDep, pki: PkiDep) -> dict[str, Any]:
    value = parse_serial(serial)
    if value is None:
        raise bad_request("invalid-serial", f"{serial[:50]!r} is not a hexadecimal serial number")
    record = pki.record(serial_hex(value))
    if record is None:
        raise not_found(f"no certificate with serial {serial_hex(value)}")
    return certificate_document(record)


@router.get("/ca/{publication}.crt", response_class=Response)
def ca_certificate(publication: str, pki: PkiDep) -> Response:
    der = pki.hierarchy.certificate_by_publication(publication)
    if der is None:
        raise not_found(f"no CA certificate published as {publication[:60]!r}")
    return Response(
        der,
        media_type="application/pkix-cert",
        headers={"Cache-Control": "public, max-age=3600"},
    )
