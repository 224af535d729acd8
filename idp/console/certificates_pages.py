"""Certificates in the console (CA operators only): search, one certificate, revocation.

Issuing from a CSR is :mod:`idp.console.certificates_issue`, CRL/OCSP health and
the hierarchy :mod:`idp.console.certificates_health`; their routes are served
through :data:`router`. A certificate is named by its serial in the query string
or the form, never in the path: every refusal's audit entry records the path,
and a path an attacker chooses must not make that entry too long to store.

Revocation goes through :func:`idp.pki.revocation.revoke`, as the HTTP API's
does: status and audit entry in one transaction, OCSP answers "revoked" from
the commit on, and the CRLs it touched are reissued after the answer.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ca.revocation import REVOCATION_REASONS, InvalidReason, parse_reason
from ca.serials import parse_serial, serial_hex
from idp.console import (
    certificates_health,
    certificates_issue,
    certificates_lifecycle,
    certificates_lifecycle_strings,
    certificates_strings,
)
from idp.console.certificates_common import (
    PROFILE_STATUSES,
    ascii_digits,
    message_page,
    pki_of,
    status_of,
    when,
)
from idp.console.certificates_query import BadSearch, Search, parse, run
from idp.console.framework import (
    NO_STORE,
    ConsoleUser,
    add_nav_link,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.i18n import translate
from idp.console.roles import Role
from idp.pki.revocation import (
    Actor,
    CertificateNotFound,
    RevocationRefused,
    issuers_touched,
    revoke,
)
from idp.storage.certificates import CertificateRecord

__all__ = ["certificates_lifecycle_strings", "certificates_strings", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(certificates_issue.router)
router.include_router(certificates_health.router)
router.include_router(certificates_lifecycle.router)
add_nav_link("/console/certs", "console.certs", Role.CA_OPERATOR)
OPERATOR = require_role(Role.CA_OPERATOR)
NOTICES = ("console.certs.revoked_now", "console.certs.already_revoked", "console.certs.issued_now")


def _row(record: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": record.serial_hex,
        "subject": record.subject,
        "issuer": record.issuer_ca,
        "profile": record.profile,
        "status": record.status,
        "not_before": when(record.not_before),
        "not_after": when(record.not_after),
        "revoked_at": when(record.revoked_at),
        "reason": record.revocation_reason or "",
        "invalidity_date": when(record.invalidity_date),
        "requested_by": record.requested_by[:24],
        "tracking_code": record.tracking_code,
    }


@router.get("/certs")
def search_page(request: Request, _user: ConsoleUser = Depends(OPERATOR)) -> HTMLResponse:
    pki = pki_of(request)
    profiles = sorted(pki.profiles)
    error_key = None
    try:
        search = parse(request.query_params, set(profiles))
    except BadSearch as exc:
        error_key = str(exc)
        search = Search()
    rows: list[CertificateRecord] = []
    next_after = None
    if error_key is None:
        with hoviyat_of(request).db.read() as db:
            rows, next_after = run(db, search)
    filters = search.query()
    return render(
        request,
        "certificates/search.html",
        {
            "profiles": profiles,
            "statuses": PROFILE_STATUSES,
            "search": filters,
            "error_key": error_key,
            "rows": [_row(row) for row in rows],
            "next_url": href(language_of(request), "/console/certs", **filters, after=next_after)
            if next_after
            else None,
            "first_url": href(language_of(request), "/console/certs", **filters)
            if search.after
            else None,
        },
        title_key="console.certs",
    )


def _serial_or_none(text: str) -> str | None:
    number = parse_serial(ascii_digits(text.strip())[:64])
    return serial_hex(number) if number is not None else None


@router.get("/certs/one")
def certificate_page(request: Request, _user: ConsoleUser = Depends(OPERATOR)) -> HTMLResponse:
    serial = _serial_or_none(request.query_params.get("serial", ""))
    if serial is None:
        return message_page(request, "console.certs.bad_serial", 400)
    record = pki_of(request).record(serial)
    if record is None:
        return message_page(request, "console.certs.not_found", 404)
    return _certificate(request, record)


def _certificate(
    request: Request,
    record: CertificateRecord,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    notice = request.query_params.get("notice")
    pem = ""
    if record.der:
        pem = x509.load_der_x509_certificate(record.der).public_bytes(Encoding.PEM).decode()
    return render(
        request,
        "certificates/one.html",
        {
            "cert": _row(record),
            "pem": pem,
            "reasons": REVOCATION_REASONS,
            "may_revoke": record.status in ("issued", "pending")
            or record.revocation_reason == "certificateHold",
            "error": error,
            "notice_key": notice if notice in NOTICES else None,
        },
        status_code=status_code,
        title_key="console.certs.one",
    )


@router.post("/certs/revoke")
async def revoke_certificate(
    request: Request, background: BackgroundTasks, user: ConsoleUser = Depends(OPERATOR)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    serial = _serial_or_none(str(form.get("serial", "")))
    if serial is None:
        return message_page(request, "console.certs.bad_serial", 400)
    services = await status_of(request)
    record = await run_in_threadpool(pki_of(request).record, serial)
    if record is None:
        return message_page(request, "console.certs.not_found", 404)
    language = language_of(request)
    try:
        reason = parse_reason(str(form.get("reason", ""))[:40])
    except InvalidReason:
        return _certificate(
            request, record, error=translate("console.certs.bad_reason", language), status_code=400
        )
    comment = str(form.get("comment", "")).strip()[:500] or None
    actor = Actor("console_user", user.person_key, comment)
    db = services.publisher.db
    try:
        outcome = await run_in_threadpool(revoke, db, int(serial, 16), reason, actor)
    except CertificateNotFound:
        return message_page(request, "console.certs.not_found", 404)
    except RevocationRefused as exc:
        text = translate("console.certs.revoke_refused", language, detail=str(exc))
        return _certificate(request, record, error=text, status_code=400)
    if not outcome.already_revoked or outcome.also_revoked:
        touched = await run_in_threadpool(
            issuers_touched, db, [outcome.certificate.serial_hex, *outcome.also_revoked]
        )
        background.add_task(services.publisher.reissue_after_revocation, touched)
    notice = "console.certs.already_revoked" if outcome.already_revoked else NOTICES[0]
    url = href(language, "/console/certs/one", serial=serial, notice=notice)
    return RedirectResponse(url, 303, headers=NO_STORE, background=background)
