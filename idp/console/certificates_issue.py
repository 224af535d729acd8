"""Issuing a certificate from a CSR in the console (CA operators only).

The CSR comes as a file (PEM or DER) or pasted PEM, with a profile and the
subject reference the profile needs. Every decision is the registration
authority's (:meth:`idp.pki.registration.Pki.prepare`: profile, subject from
the registries, CSR signature, key, names), the same checks as
``POST /v1/certificates``; a refusal is a page saying which check and why, and
nothing is written.

Profiles that confer CA-side power (``issuance = "ceremony"``: OCSP responders,
service signing) are never issued by one person. The request is checked in
full, then recorded for a second CA operator's approval
(:mod:`idp.console.approvals`); approving issues it through the CA's ceremony
path, once the approval has committed (the kind's ``carry_out``), so the intent
is still recorded in a transaction of its own before the CA key signs (on SQLite
a second writer inside the approval's transaction would wait for it forever).
The issued serial, or the CA's refusal, is recorded on the approval; an approval
whose worker died before that can be carried out again from its page. The
certificate is filed under the tracking code named at the decision (kept by the
approval's claim), so a resumed approval whose first worker signed before dying
finds that certificate and records it rather than signing a second one. What is
left: a first worker stalled for longer than the claim's ten minutes between that
look and the CA's intent could still race the one resuming it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message

from ca import names
from idp.audit.log import AuditEvent
from idp.console import approvals
from idp.console.approvals import ApprovalKind, register_kind
from idp.console.certificates_common import ascii_digits, message_page, pki_of
from idp.console.framework import (
    NO_STORE,
    ConsoleUser,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.i18n import translate
from idp.console.roles import Role
from idp.login.i18n import Language
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki
from idp.pki.registration import Request as CertificateRequest
from idp.pki.subjects import SubjectReference
from idp.storage.certificate_store import certificate_with_tracking_code, record_audit_event
from idp.storage.console import ConsoleApproval
from idp.tracking import new_tracking_code

router = APIRouter(include_in_schema=False)
OPERATOR = require_role(Role.CA_OPERATOR)
KIND = "ca_ceremony_certificate"
MAX_FORM_BYTES = 128 * 1024  # a CSR is at most 64 KiB (idp.pki.csr.MAX_CSR_BYTES), plus the fields
FIELDS = ("profile", "csr_text", "national_code", "national_id", "dns_names", "service_name")
NOTICES = ("console.certs.requested",)


def _describe(payload: dict[str, Any], language: Language) -> str:
    name = str(payload.get("service_name") or payload.get("national_id") or "")
    if payload.get("issuing_ca"):
        name += f" ({payload['issuing_ca']})"
    return translate("console.certs.describe", language, profile=payload.get("profile"), name=name)


def _request_of(payload: dict[str, Any], requested_by: str) -> CertificateRequest:
    return CertificateRequest(
        csr=str(payload["csr"]),
        profile=str(payload["profile"]),
        subject=SubjectReference(
            national_id=payload.get("national_id") or None,
            dns_names=tuple(payload.get("dns_names") or ()),
            service_name=payload.get("service_name") or None,
        ),
        requested_by=requested_by,
        request_reason=payload.get("reason") or None,
        actor_type="console_user",
        issuing_ca=payload.get("issuing_ca") or None,
    )


def _apply(
    _http_request: Request,
    _db: Session,
    _approval: ConsoleApproval,
    _approver: str,
    _moment: datetime,
) -> dict[str, Any]:
    # Nothing in the decision's transaction but naming the issuance to come.
    return {"certificate_tracking_code": new_tracking_code()}


def _carry_out(
    http_request: Request, approval: ConsoleApproval, approver: str, decided: dict[str, Any]
) -> dict[str, Any]:
    pki = pki_of(http_request)
    tracking_code = str(decided.get("certificate_tracking_code") or new_tracking_code())
    request = _request_of(approval.payload, approval.requested_by)
    # Resumed after a worker that died: if it got as far as the CA's intent (filed under
    # the decision's tracking code), that certificate is the approval's; never a second.
    # A failed intent was never signed (a pending row alone may become issued): try again.
    done = certificate_with_tracking_code(pki.db, tracking_code)
    if done is not None and done.status == "failed":
        tracking_code = new_tracking_code()
    elif done is not None:
        return {
            "profile": done.profile,
            "serial": done.serial_hex,
            "certificate_tracking_code": tracking_code,
            "already": done.status,
        }
    return _issue_approved(pki, request, tracking_code, approval.id, approver)


def _issue_approved(
    pki: Pki,
    request: CertificateRequest,
    tracking_code: str,
    approval_id: int | None,
    approver: str,
) -> dict[str, Any]:
    try:
        order = pki.prepare(request, tracking_code, ceremony=True)
        (issued,) = pki.issue_orders([order])
    except CertificateRefused as refusal:
        # Approved, but the CA would not sign now (a key blocked since the request, a
        # lint finding, the CA keys unavailable): recorded, nothing else written.
        record_audit_event(
            pki.db,
            AuditEvent(
                tracking_code=tracking_code,
                event_type="certificate_refused",
                actor_type="console_user",
                actor_id=approver,
                operation=request.profile,
                outcome="refused",
                detail={"reason": refusal.slug, "approval_id": approval_id, "via": "console"},
            ),
        )
        return {"profile": request.profile, "refused": refusal.slug}
    return {
        "profile": request.profile,
        "serial": issued.serial_hex,
        "certificate_tracking_code": tracking_code,
    }


register_kind(
    ApprovalKind(
        KIND, Role.CA_OPERATOR, "console.certs.kind.ceremony", _describe, _apply, _carry_out
    )
)


async def capped_form(request: Request) -> FormData | None:
    """The form, or None if the body is larger than :data:`MAX_FORM_BYTES`.

    Read with a cap before parsing: the multipart parser would otherwise spool
    an upload of any size to disk first.
    """
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=1, max_fields=20)


def _profiles(pki: Pki) -> list[dict[str, Any]]:
    return [
        {"name": name, "ceremony": profile.ceremony_only, "subject": profile.subject}
        for name, profile in sorted(pki.profiles.items())
    ]


def _page(
    request: Request,
    user: ConsoleUser,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    error_detail: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    pki = pki_of(request)
    with hoviyat.db.session() as db:
        pending = approvals.pending_for(db, user, KIND)
        listing = approvals.listing(request, pending, user)
    notice = request.query_params.get("notice")
    return render(
        request,
        "certificates/issue.html",
        {
            "profiles": _profiles(pki),
            "issuing_cas": names.ISSUING_CAS,
            "values": values or {},
            "error": error,
            "error_detail": error_detail,
            "approvals": listing["approvals"],
            "notice_key": notice if notice in NOTICES else listing["notice_key"],
        },
        status_code=status_code,
        title_key="console.certs.issue",
    )


@router.get("/certs/issue")
async def issue_page(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> HTMLResponse:
    return await run_in_threadpool(_page, request, user)


async def _csr_bytes(form: FormData) -> bytes:
    upload = form.get("csr_file")
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_FORM_BYTES + 1)
        if data.strip():
            return data
    text = form.get("csr_text")
    return text.encode() if isinstance(text, str) else b""


@router.post("/certs/issue")
async def issue(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> Response:
    language = language_of(request)
    try:
        form = await capped_form(request)
    except HTTPException:  # not a form the parser can read (a broken multipart body)
        return message_page(
            request, "console.certs.bad_form", 400, link_path="/console/certs/issue"
        )
    if form is None:
        return message_page(
            request,
            "console.certs.too_large",
            413,
            link_path="/console/certs/issue",
            limit=str(MAX_FORM_BYTES // 1024),
        )
    check_csrf(request, form)
    values = {name: str(form.get(name) or "")[:70000] for name in FIELDS}
    values["issuing_ca"] = str(form.get("issuing_ca") or "")[:40]
    values["reason"] = str(form.get("reason") or "").strip()[:500]
    csr = await _csr_bytes(form)
    return await run_in_threadpool(_issue, request, user, values, csr, language)


def _issue(
    request: Request, user: ConsoleUser, values: dict[str, str], csr: bytes, language: Language
) -> Response:
    shown = {k: v for k, v in values.items() if k != "csr_text"}
    pki = pki_of(request)
    profile = pki.profiles.get(values["profile"])
    if profile is None:
        error = translate("console.certs.bad_profile", language)
        return _page(request, user, values=shown, error=error, status_code=400)
    if not csr.strip():
        error = translate("console.certs.no_csr", language)
        return _page(request, user, values=shown, error=error, status_code=400)
    dns_names = tuple(name for name in re.split(r"[\s,]+", values["dns_names"]) if name)[:100]
    subject = SubjectReference(
        # A ceremony profile names a service, never a person: no national code kept for it.
        national_code=None
        if profile.ceremony_only
        else ascii_digits(values["national_code"]).strip() or None,
        national_id=ascii_digits(values["national_id"]).strip()[:40] or None,
        dns_names=dns_names,
        service_name=values["service_name"].strip()[:200] or None,
    )
    certificate_request = CertificateRequest(
        csr=csr,
        profile=profile.name,
        subject=subject,
        requested_by=user.person_key,
        request_reason=values["reason"] or None,
        actor_type="console_user",
        issuing_ca=values["issuing_ca"] or None,
    )
    try:
        if profile.ceremony_only:
            pki.prepare(certificate_request, ceremony=True)  # every check; nothing written
            return _request_approval(request, user, certificate_request, csr, subject)
        issued = pki.request_certificate(certificate_request)
    except CertificateRefused as refusal:
        error = translate("console.certs.refused", language, slug=refusal.slug)
        status = refusal.status if refusal.status in (400, 403, 409, 422, 503) else 400
        return _page(
            request,
            user,
            values=shown,
            error=error,
            error_detail=refusal.detail,
            status_code=status,
        )
    url = href(
        language, "/console/certs/one", serial=issued.serial_hex, notice="console.certs.issued_now"
    )
    return RedirectResponse(url, 303, headers=NO_STORE)


def _request_approval(
    request: Request,
    user: ConsoleUser,
    certificate_request: CertificateRequest,
    csr: bytes,
    subject: SubjectReference,
) -> Response:
    pem = (
        csr.decode("ascii", "replace")
        if b"-----BEGIN" in csr
        else x509.load_der_x509_csr(csr).public_bytes(Encoding.PEM).decode()
    )
    payload = {
        "csr": pem,
        "profile": certificate_request.profile,
        "national_id": subject.national_id,
        "dns_names": list(subject.dns_names),
        "service_name": subject.service_name,
        "issuing_ca": certificate_request.issuing_ca,
        "reason": certificate_request.request_reason,
    }
    with hoviyat_of(request).db.session() as db:
        approvals.request(db, KIND, payload, user)
    url = href(language_of(request), "/console/certs/issue", notice="console.certs.requested")
    return RedirectResponse(url, 303, headers=NO_STORE)
