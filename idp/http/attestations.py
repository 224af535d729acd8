"""HTTP doors to attestations (bylaw Article 12): holders issue and share, receivers check.

- ``POST /v1/attestations``: a person logged in at level substantial or higher
  (a bearer access token of a login: the grant it names, or a ``national_code``
  claim) has one issued; an agency app holding such a token for a consenting
  person may do the same when its service policy allows
  ``attestations.request``.
- ``GET /v1/attestations``, ``POST /v1/attestations/{id}/revoke``,
  ``POST /v1/attestations/shares``: the holder's own list, revocation (the
  holder or an ``admin`` client), and a verification code for a presentation.
- ``POST /v1/attestations/verify``: back offices (client credentials).
- ``GET /v1/attestations/status-lists/{n}``: the signed Token Status List.

The HTML pages (the clerk's check page, the holder's own page, QR images)
are in :mod:`idp.attestations.pages`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import Field

from idp.attestations import qr, rfc9901, sharing
from idp.attestations.claims import FactSelection, FactSelectionError
from idp.attestations.issuer import AttestationRequest, AttestationSettings, revoke
from idp.attestations.provision import default_path, pki_source
from idp.attestations.service import AttestationService, build_service
from idp.attestations.status_list import MEDIA_TYPE as STATUS_LIST_MEDIA_TYPE
from idp.attestations.verifier import Report
from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_client, token_claims
from idp.http.schema import INT64_MAX, StrictModel
from idp.pki.refusals import CertificateRefused
from idp.pki.service import get_pki
from idp.problems import (
    Problem,
    bad_request,
    forbidden,
    not_found,
    service_unavailable,
    unauthorized,
)
from idp.storage.attestations import Attestation, attestation, holder_attestations
from idp.storage.grants import load_grant
from idp.tracking import new_tracking_code
from policies.assurance import SUBSTANTIAL, rank
from verifiers.identifiers import IdentifierError, validate_national_id
from verifiers.registry.base import LegalEntity, RegistryUnavailable

router = APIRouter(tags=["attestations"])
OPERATION = "attestations.request"
MAX_ATTESTATION_CHARS = 65_536
_build_lock = threading.Lock()
# How long a client should wait before asking again while the CA is being set up.
NOT_INITIALISED_RETRY_SECONDS = 30


def get_attestations(request: Request) -> AttestationService:
    """The process's attestation service; the first call may obtain the signer from the CA."""
    state = request.app.state
    service: AttestationService | None = getattr(state, "hoviyat_attestations", None)
    if service is not None:
        return service
    with _build_lock:
        service = getattr(state, "hoviyat_attestations", None)
        if service is None:
            hoviyat: Hoviyat = state.hoviyat
            try:
                service = build_service(
                    AttestationSettings(),
                    issuer_url=hoviyat.settings.issuer,
                    db=hoviyat.db,
                    signer_path=default_path(hoviyat.settings.data_dir),
                    kek=hoviyat.secrets.key_encryption_key,
                    pepper=hoviyat.secrets.subject_pepper,
                    source=lambda: pki_source(get_pki(request)),
                )
            except CertificateRefused as refusal:
                # Before 'hoviyat ca init' there is no CA to certify the signer: the
                # server is not broken, it is not set up yet; nothing is cached, so
                # the first request after the ceremony builds the service.
                raise _not_initialised(refusal) from None
            state.hoviyat_attestations = service
    return service


def _not_initialised(refusal: CertificateRefused) -> Problem:
    retry_after = refusal.retry_after or NOT_INITIALISED_RETRY_SECONDS
    return Problem(
        503,
        "attestations-not-initialised",
        "Service unavailable",
        f"attestations cannot be signed yet: {refusal.detail}",
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


# --- who is asking ------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A person logged in at ``acr``, possibly through an agency app (``client_id``)."""

    national_code: str
    acr: str
    client_id: str | None
    service_code: str | None
    entity_national_id: str | None


def _person_of(claims: dict[str, Any], hoviyat: Hoviyat) -> tuple[str, str | None]:
    if isinstance(claims.get("national_code"), str):
        return claims["national_code"], claims.get("entity_national_id")
    grant_id = claims.get("gid")
    if isinstance(grant_id, str):
        with hoviyat.db.session() as session:
            grant = load_grant(session, grant_id)
        if grant is None or grant.revoked_at is not None:
            raise unauthorized("the login behind this token has ended or was revoked")
        return grant.national_code, grant.entity_national_id
    raise unauthorized("this token does not stand for a logged-in person: log in first")


def require_holder(request: Request, hoviyat: Annotated[Hoviyat, Depends(get_hoviyat)]) -> Holder:
    claims = token_claims(request, hoviyat)
    national_code, entity = _person_of(claims, hoviyat)
    acr = claims.get("acr")
    if rank(acr if isinstance(acr, str) else None) < rank(SUBSTANTIAL):
        raise forbidden(
            "insufficient-assurance",
            "attestations need a login at level substantial or higher (mobile one-time code)",
            required_acr=SUBSTANTIAL,
        )
    service_code = claims.get("service_code")
    if isinstance(service_code, str):
        policy = hoviyat.policies.get(service_code)
        if policy is None or not policy.allows(OPERATION):
            raise forbidden(
                "operation-not-allowed",
                f"service policy {service_code!r} does not allow operation {OPERATION!r}",
                service_code=service_code,
                operation=OPERATION,
            )
    return Holder(
        national_code=national_code,
        acr=str(acr),
        client_id=claims.get("client_id"),
        service_code=service_code if isinstance(service_code, str) else None,
        entity_national_id=entity,
    )


HoviyatDep = Annotated[Hoviyat, Depends(get_hoviyat)]
ServiceDep = Annotated[AttestationService, Depends(get_attestations)]
HolderDep = Annotated[Holder, Depends(require_holder)]
CallerDep = Annotated[Caller, Depends(require_client)]


# --- issuing ----------------------------------------------------------------------


class AttestationIn(StrictModel):
    purpose: str = Field(min_length=3, max_length=500, description="what it is for")
    recipient: str | None = Field(None, max_length=500, description="who it is for (aud)")
    facts: list[str] = Field(default_factory=list, max_length=16)
    age_over: list[Annotated[int, Field(ge=1, le=150)]] = Field(default_factory=list, max_length=8)
    entity_national_id: str | None = Field(None, max_length=32)
    holder_jwk: dict[str, Any] | None = Field(None, description="public key for Key Binding")
    validity_days: int | None = Field(
        None, ge=1, le=36500, description="default and maximum by policy"
    )
    verification_code: bool = Field(True, description="also make a code and QR for a clerk")


def code_links(issuer: str, code: str) -> dict[str, str]:
    base = issuer.rstrip("/")
    return {
        "verification_code": code,
        "check_url": qr.check_url(issuer, code),
        "qr_png": f"{base}/attestations/qr/{code}.png",
        "qr_svg": f"{base}/attestations/qr/{code}.svg",
    }


def _entity(hoviyat: Hoviyat, national_id: str) -> LegalEntity | None:
    try:
        return hoviyat.registries.deeds.entity(national_id)
    except RegistryUnavailable as exc:
        raise service_unavailable(str(exc), exc.retry_after) from None


@router.post("/v1/attestations", status_code=201)
def issue_attestation(
    body: AttestationIn,
    holder: HolderDep,
    hoviyat: HoviyatDep,
    service: ServiceDep,
) -> dict[str, Any]:
    return issue_for(hoviyat, service, holder, body)


def issue_for(
    hoviyat: Hoviyat, service: AttestationService, holder: Holder, body: AttestationIn
) -> dict[str, Any]:
    """Issue for ``holder`` (API and the holder's page); bad input raises a Problem."""
    settings = service.settings
    days = body.validity_days or settings.default_validity_days
    if days > settings.max_validity_days:
        raise bad_request(
            "validity-too-long",
            f"validity_days may be at most {settings.max_validity_days}",
            field="validity_days",
        )
    entity_id = body.entity_national_id
    if entity_id is not None:
        try:
            entity_id = validate_national_id(entity_id)
        except IdentifierError as exc:
            raise bad_request("invalid-identifier", str(exc), field="entity_national_id") from None
    try:
        request = AttestationRequest(
            purpose=body.purpose,
            recipient=body.recipient,
            selection=FactSelection.of(body.facts, body.age_over, entity_id),
            holder_jwk=body.holder_jwk,
            validity=timedelta(days=days),
        )
        if body.holder_jwk is not None:
            rfc9901.holder_key(body.holder_jwk)
    except (FactSelectionError, ValueError) as exc:
        raise bad_request("invalid-attestation-request", str(exc)) from None
    try:
        person = hoviyat.registries.civil.person(holder.national_code)
    except RegistryUnavailable as exc:
        raise service_unavailable(str(exc), exc.retry_after) from None
    if person is None or not person.alive:
        raise Problem(
            409, "not-in-registry", "Conflict", "the civil registry has no living person for you"
        )
    entity = _entity(hoviyat, entity_id) if entity_id else None
    try:
        issued, code = service.issue(
            person,
            request,
            level=holder.acr,
            entity=entity,
            actor_type="client" if holder.client_id else "citizen",
            client_id=holder.client_id,
            share=body.verification_code,
        )
    except FactSelectionError as exc:
        raise Problem(422, "fact-not-attestable", "Unprocessable", str(exc)) from None
    answer: dict[str, Any] = {
        "id": issued.id,
        "tracking_code": issued.tracking_code,
        "issued_at": issued.issued_at.isoformat(),
        "expires_at": issued.expires_at.isoformat(),
        "jwt": issued.jwt,
        "sd_jwt": issued.sd_jwt,
        "status": {"list": issued.status_list_id, "index": issued.status_index},
    }
    if code:
        answer.update(code_links(service.issuer_url, code))
    return answer


def _row_dict(row: Attestation) -> dict[str, Any]:
    return {
        "id": row.id,
        "purpose": row.purpose,
        "recipient": row.recipient,
        "facts": row.facts,
        "issued_at": row.issued_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "tracking_code": row.tracking_code,
    }


@router.get("/v1/attestations")
def list_attestations(holder: HolderDep, hoviyat: HoviyatDep) -> dict[str, Any]:
    holder_hash = subject_hash(hoviyat.secrets.subject_pepper, holder.national_code)
    with hoviyat.db.session() as session:
        rows = holder_attestations(session, holder_hash)
        return {"attestations": [_row_dict(row) for row in rows]}


class RevokeIn(StrictModel):
    reason: str = Field("holder request", min_length=1, max_length=200)


@router.post("/v1/attestations/{attestation_id}/revoke")
def revoke_attestation(
    attestation_id: str,
    request: Request,
    hoviyat: HoviyatDep,
    body: RevokeIn | None = None,
) -> dict[str, Any]:
    claims = token_claims(request, hoviyat)
    reason = body.reason if body else "holder request"
    actor_id: str | None
    holder_hash: str | None
    if "admin" in (claims.get("roles") or []):
        # An administrator revokes any attestation (a complaint, a court order...).
        actor_type, actor_id, holder_hash = "client", str(claims.get("client_id")), None
    else:
        holder = require_holder(request, hoviyat)
        actor_type = "client" if holder.client_id else "citizen"
        actor_id = holder.client_id
        holder_hash = subject_hash(hoviyat.secrets.subject_pepper, holder.national_code)
    with hoviyat.db.session() as session:
        row = revoke(
            session,
            attestation_id,
            actor_type=actor_type,
            actor_id=actor_id,
            reason=reason,
            holder_subject_hash=holder_hash,
        )
        if row is None:
            raise not_found(f"no attestation {attestation_id} of yours")
        return _row_dict(row)


class ShareIn(StrictModel):
    presentation: str = Field(min_length=10, max_length=MAX_ATTESTATION_CHARS)


@router.post("/v1/attestations/shares", status_code=201)
def share_presentation(
    body: ShareIn,
    holder: HolderDep,
    hoviyat: HoviyatDep,
    service: ServiceDep,
) -> dict[str, Any]:
    # The holder checks their own presentation before sharing it: they are no receiver,
    # so an ``aud`` naming the receiver is expected, not refused.
    report = service.verifier.verify(body.presentation, any_audience=True)
    if not report.valid:
        raise bad_request(
            "attestation-invalid",
            f"the presentation does not verify ({report.failed_check})",
            report=report.as_dict(),
        )
    holder_hash = subject_hash(hoviyat.secrets.subject_pepper, holder.national_code)
    with hoviyat.db.session() as session:
        jti = report.claims.get("jti")
        row = attestation(session, jti) if isinstance(jti, str) else None
        if row is None or row.holder_subject_hash != holder_hash:
            raise not_found("this attestation was not issued to you")
        code = sharing.share(session, row.id, body.presentation.strip(), row.expires_at)
    return code_links(service.issuer_url, code)


# --- verifying ----------------------------------------------------------------------


class VerifyIn(StrictModel):
    attestation: str = Field(min_length=10, max_length=MAX_ATTESTATION_CHARS)
    check_status: bool = True
    require_key_binding: bool = False
    audience: str | None = Field(None, max_length=500)
    nonce: str | None = Field(None, max_length=200)


def record_check(
    hoviyat: Hoviyat, report: Report, *, actor_type: str, actor_id: str | None, service: str | None
) -> str:
    """Audit a check; the holder, found through the attestation id, sees who checked."""
    tracking_code = new_tracking_code()
    with hoviyat.db.session() as session:
        attestation_id = report.claims.get("jti") if report.claims else None
        row = attestation(session, attestation_id) if isinstance(attestation_id, str) else None
        append(
            session,
            AuditEvent(
                tracking_code=tracking_code,
                event_type="attestation.verified",
                actor_type=actor_type,
                actor_id=actor_id,
                service_code=service,
                operation="attestation.verify",
                subject_hash=row.holder_subject_hash if row else None,
                outcome="valid" if report.valid else "invalid",
                detail={
                    "attestation_id": attestation_id if row else None,
                    "failed_check": report.failed_check,
                },
            ),
        )
    return tracking_code


@router.post("/v1/attestations/verify")
def verify_attestation(
    body: VerifyIn,
    caller: CallerDep,
    hoviyat: HoviyatDep,
    service: ServiceDep,
) -> dict[str, Any]:
    if body.require_key_binding and not (body.audience and body.nonce):
        raise bad_request(
            "key-binding-parameters", "require_key_binding needs the audience and nonce you expect"
        )
    policy = rfc9901.KeyBindingPolicy(
        required=body.require_key_binding, audience=body.audience, nonce=body.nonce
    )
    report = service.verifier.verify(
        body.attestation,
        key_binding=policy,
        check_status=body.check_status,
        audience=body.audience,
    )
    tracking_code = record_check(
        hoviyat,
        report,
        actor_type="client",
        actor_id=caller.client_id,
        service=caller.service_code,
    )
    return {**report.as_dict(), "tracking_code": tracking_code}


@router.get("/v1/attestations/status-lists/{list_id}")
def status_list(list_id: Annotated[int, Path(ge=0, le=INT64_MAX)], service: ServiceDep) -> Response:
    token = service.status_list_token(list_id)
    if token is None:
        raise not_found(f"no status list {list_id}")
    ttl = service.settings.status_list_ttl_seconds
    return Response(
        token,
        media_type=STATUS_LIST_MEDIA_TYPE,
        # Public and signed: any receiver may cache it for ttl and read it from a browser.
        headers={"Cache-Control": f"public, max-age={ttl}", "Access-Control-Allow-Origin": "*"},
    )
