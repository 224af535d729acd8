"""The CA's lifecycle in the console (CA operators only): what ``hoviyat ca`` does on the CLI.

- Rolling an issuing CA over to a new key (``ca rollover``), installing an issuing
  CA certificate the offline root signed (``ca install-issuing``) and giving up on
  stale issuance intents (``ca fail-pending``) each change what the CA is or what
  its records say: one CA operator requests, another approves
  (:mod:`idp.console.approvals`), as an EJBCA or step-ca deployment puts key
  ceremonies behind M-of-N. Approving runs the same code as the CLI
  (:class:`idp.pki.hierarchy.Hierarchy`, :func:`idp.storage.certificate_store.fail_stale_intents`)
  on the same key store and CA settings, after the approval commits (the
  hierarchy writes in transactions of its own); the result (new generation,
  key id, failed serials) is recorded on the approval and shown on its page.
- Publishing a fresh CRL now is one CA operator's act, as EJBCA's "Create CRL"
  and ``step ca crl`` are: it signs the revocation state the CA already holds
  and changes no certificate, and the revocation path does the same unasked.
  It is audited (``crl_published``, the operator named).

An install request is checked when made: a chain that does not parse, names no
pending generation here (``ca csr`` first) or is not signed by this root is a
form error, and nothing is stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ca import names
from ca.hierarchy import HierarchyError, key_id_of
from ca.keys import KeyStoreError
from ca.settings import CASettings
from idp.console import approvals
from idp.console.approvals import ApprovalKind, register_kind
from idp.console.certificates_common import message_page, pki_of, status_of
from idp.console.certificates_issue import MAX_FORM_BYTES, capped_form
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
from idp.pki.crl_publisher import CRLUnavailable
from idp.pki.hierarchy import Hierarchy
from idp.pki.revocation import Actor
from idp.storage.certificate_store import AuthorityRecords, authority_rows, fail_stale_intents
from idp.storage.console import ConsoleApproval

router = APIRouter(include_in_schema=False)
OPERATOR = require_role(Role.CA_OPERATOR)
ROLLOVER = "ca_rollover"
INSTALL = "ca_install_issuing"
FAIL_PENDING = "ca_fail_pending"
KINDS = (ROLLOVER, INSTALL, FAIL_PENDING)
PAGE = "/console/certs/lifecycle"
MAX_MINUTES = 7 * 24 * 60
NOTICES = ("console.lifecycle.requested", "console.lifecycle.crl_published")


def _hierarchy(request: Request, operator: str) -> Hierarchy:
    """The CLI's hierarchy (``idp.cli.ca``): same database, key store and CA settings.

    The key store is the app's own (files or PKCS#11, opened once per process); the
    CRL partitions of a new generation come from HOVIYAT_CA_CRL_PARTITIONS as on the CLI.
    """
    pki = pki_of(request)
    try:
        partitions = CASettings().crl_partitions
    except ValidationError as exc:
        raise HierarchyError(f"CA settings: {exc.errors()[0]['loc'][0]}") from None
    return Hierarchy(
        pki.db,
        pki.hierarchy.keys,
        hoviyat_of(request).settings.issuer,
        crl_partitions=partitions,
        operator=operator,
    )


def _refused(exc: Exception) -> dict[str, Any]:
    return {"refused": str(exc)[:500]}


# --- the approval kinds ---------------------------------------------------------


def _describe_rollover(payload: dict[str, Any], language: Language) -> str:
    return translate(
        "console.lifecycle.describe_rollover",
        language,
        ca=payload.get("ca"),
        generation=payload.get("from_generation"),
        reason=payload.get("reason") or "—",
    )


def _describe_install(payload: dict[str, Any], language: Language) -> str:
    return translate(
        "console.lifecycle.describe_install",
        language,
        ca=payload.get("ca"),
        generation=payload.get("generation"),
        serial=payload.get("serial"),
        reason=payload.get("reason") or "—",
    )


def _describe_fail(payload: dict[str, Any], language: Language) -> str:
    return translate(
        "console.lifecycle.describe_fail",
        language,
        minutes=payload.get("minutes"),
        reason=payload.get("reason") or "—",
    )


def _nothing_now(
    _request: Request, _db: Session, _approval: ConsoleApproval, _approver: str, _now: object
) -> dict[str, Any]:
    return {}  # all of it runs after the decision commits (carry_out)


def _rollover(
    request: Request, approval: ConsoleApproval, approver: str, _decided: dict[str, Any]
) -> dict[str, Any]:
    name = str(approval.payload["ca"])
    before = int(approval.payload["from_generation"])
    try:
        hierarchy = _hierarchy(request, approver)
        # The request was for the generation after ``before``: if one exists, it is
        # made (by this approval, carried out before a worker died, or by the CLI).
        last = AuthorityRecords(hierarchy.db).last_generation(name)
        if last > before:
            return {"ca": name, "already": f"generation {last}"}
        ca = hierarchy.rollover(name)
    except (HierarchyError, KeyStoreError) as exc:
        return {"ca": name, **_refused(exc)}
    pki_of(request).hierarchy.forget()  # this process signs with the new key at once
    return {"ca": ca.name, "generation": ca.generation, "key_id": ca.key_id}


def _install(
    request: Request, approval: ConsoleApproval, approver: str, _decided: dict[str, Any]
) -> dict[str, Any]:
    chain = x509.load_pem_x509_certificates(str(approval.payload["chain"]).encode())
    try:
        hierarchy = _hierarchy(request, approver)
        installed = AuthorityRecords(hierarchy.db).authority_by_key_id(key_id_of(chain[0]))
        if installed is not None and installed.certificate is not None:
            return {"ca": installed.name, "already": f"generation {installed.generation}"}
        name = hierarchy.install_issuing(chain)
        ca = hierarchy.issuing_ca(name)
    except (HierarchyError, KeyStoreError) as exc:
        return _refused(exc)
    pki_of(request).hierarchy.forget()
    return {"ca": ca.name, "generation": ca.generation, "key_id": ca.key_id}


def _fail_pending(
    request: Request, approval: ConsoleApproval, approver: str, _decided: dict[str, Any]
) -> dict[str, Any]:
    minutes = int(approval.payload["minutes"])
    # Idempotent by itself: one conditional UPDATE per row, whoever runs it.
    serials = fail_stale_intents(pki_of(request).db, timedelta(minutes=minutes), approver)
    return {"failed": len(serials), "serials": " ".join(serials[:20])}


for _kind in (
    ApprovalKind(
        ROLLOVER,
        Role.CA_OPERATOR,
        "console.lifecycle.kind.rollover",
        _describe_rollover,
        _nothing_now,
        _rollover,
    ),
    ApprovalKind(
        INSTALL,
        Role.CA_OPERATOR,
        "console.lifecycle.kind.install",
        _describe_install,
        _nothing_now,
        _install,
    ),
    ApprovalKind(
        FAIL_PENDING,
        Role.CA_OPERATOR,
        "console.lifecycle.kind.fail_pending",
        _describe_fail,
        _nothing_now,
        _fail_pending,
    ),
):
    register_kind(_kind)


# --- the page -------------------------------------------------------------------


def _page(
    request: Request,
    user: ConsoleUser,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    pki = pki_of(request)
    with hoviyat_of(request).db.session() as db:
        pending = [row for kind in KINDS for row in approvals.pending_for(db, user, kind)]
    listing = approvals.listing(request, pending, user)
    rows = authority_rows(pki.db)
    notice = request.query_params.get("notice")
    return render(
        request,
        "certificates/lifecycle.html",
        {
            "issuing_cas": names.ISSUING_CAS,
            "authorities": [
                {
                    "name": row.name,
                    "generation": row.generation,
                    "key_id": row.key_id[:16],
                    "active": row.active,
                    "certified": row.certificate is not None,
                }
                for row in rows
            ],
            "approvals": listing["approvals"],
            "error": error,
            "values": values or {},
            "notice_key": notice if notice in NOTICES else listing["notice_key"],
        },
        status_code=status_code,
        title_key="console.lifecycle",
    )


@router.get("/certs/lifecycle")
async def lifecycle_page(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> HTMLResponse:
    return await run_in_threadpool(_page, request, user)


def _requested(request: Request) -> Response:
    url = href(language_of(request), PAGE, notice="console.lifecycle.requested")
    return RedirectResponse(url, 303, headers=NO_STORE)


def _reason(form: FormData) -> str:
    return str(form.get("reason") or "").strip()[:500]


@router.post("/certs/lifecycle/rollover")
async def request_rollover(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    name = str(form.get("ca") or "")
    reason = _reason(form)
    return await run_in_threadpool(_request_rollover, request, user, name, reason)


def _request_rollover(request: Request, user: ConsoleUser, name: str, reason: str) -> Response:
    language = language_of(request)
    values = {"ca": name, "reason": reason}
    if name not in names.ISSUING_CAS:
        error = translate("console.lifecycle.bad_ca", language)
        return _page(request, user, error=error, values=values, status_code=400)
    if not reason:
        error = translate("console.lifecycle.no_reason", language)
        return _page(request, user, error=error, values=values, status_code=400)
    pki = pki_of(request)
    current = AuthorityRecords(pki.db).authority(name, None)
    if current is None:
        error = translate("console.lifecycle.no_ca", language, ca=name)
        return _page(request, user, error=error, values=values, status_code=409)
    payload = {"ca": name, "from_generation": current.generation, "reason": reason}
    with hoviyat_of(request).db.session() as db:
        approvals.request(db, ROLLOVER, payload, user)
    return _requested(request)


@router.post("/certs/lifecycle/install")
async def request_install(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> Response:
    try:
        form = await capped_form(request)
    except HTTPException:
        return message_page(request, "console.certs.bad_form", 400, link_path=PAGE)
    if form is None:
        limit = str(MAX_FORM_BYTES // 1024)
        return message_page(request, "console.certs.too_large", 413, link_path=PAGE, limit=limit)
    check_csrf(request, form)
    chain = str(form.get("chain_text") or "").encode()
    upload = form.get("chain_file")
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_FORM_BYTES + 1)
        if data.strip():
            chain = data
    return await run_in_threadpool(_request_install, request, user, chain, _reason(form))


def _check_chain(request: Request, data: bytes) -> tuple[list[x509.Certificate], dict[str, Any]]:
    """The chain and what it installs, or ValueError with the message key saying why not."""
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("console.lifecycle.bad_chain") from None
    records = AuthorityRecords(pki_of(request).db)
    issuing = chain[0]
    pending = next(
        (
            row
            for row in (records.pending_authority(name) for name in names.ISSUING_CAS)
            if row is not None
            and names.ca_subject(row.name, row.generation) == issuing.subject
            and row.key_id == key_id_of(issuing)
        ),
        None,
    )
    if pending is None:
        raise ValueError("console.lifecycle.no_pending")
    root = records.authority(names.ROOT, None)
    if root is not None and root.certificate is not None:
        root_certificate = x509.load_der_x509_certificate(root.certificate)
    elif len(chain) > 1:
        root_certificate = chain[1]
    else:
        raise ValueError("console.lifecycle.not_root_signed")
    try:
        issuing.verify_directly_issued_by(root_certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise ValueError("console.lifecycle.not_root_signed") from None
    return chain, {
        "ca": pending.name,
        "generation": pending.generation,
        "serial": format(issuing.serial_number, "x"),
    }


def _request_install(request: Request, user: ConsoleUser, data: bytes, reason: str) -> Response:
    language = language_of(request)
    if not reason:
        error = translate("console.lifecycle.no_reason", language)
        return _page(request, user, error=error, status_code=400)
    try:
        chain, about = _check_chain(request, data)
    except ValueError as exc:
        return _page(request, user, error=translate(str(exc), language), status_code=400)
    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)
    with hoviyat_of(request).db.session() as db:
        approvals.request(db, INSTALL, {**about, "chain": pem, "reason": reason}, user)
    return _requested(request)


@router.post("/certs/lifecycle/fail-pending")
async def request_fail_pending(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    minutes = str(form.get("minutes") or "").strip()
    return await run_in_threadpool(_request_fail, request, user, minutes, _reason(form))


def _request_fail(request: Request, user: ConsoleUser, minutes: str, reason: str) -> Response:
    language = language_of(request)
    values = {"minutes": minutes[:10], "reason": reason}
    if not minutes.isascii() or not minutes.isdigit() or not 1 <= int(minutes) <= MAX_MINUTES:
        error = translate("console.lifecycle.bad_minutes", language, most=MAX_MINUTES)
        return _page(request, user, error=error, values=values, status_code=400)
    if not reason:
        error = translate("console.lifecycle.no_reason", language)
        return _page(request, user, error=error, values=values, status_code=400)
    with hoviyat_of(request).db.session() as db:
        approvals.request(db, FAIL_PENDING, {"minutes": int(minutes), "reason": reason}, user)
    return _requested(request)


@router.post("/certs/lifecycle/crl")
async def publish_crl(request: Request, user: ConsoleUser = Depends(OPERATOR)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    name = str(form.get("ca") or "")
    if name not in names.ISSUING_CAS:
        return message_page(request, "console.lifecycle.bad_ca", 400, link_path=PAGE)
    status = await status_of(request)
    pki = pki_of(request)
    actor = Actor("console_user", user.person_key, "console: publish a CRL now")

    def publish() -> int:
        return len(status.publisher.publish_all(pki.hierarchy.issuing_ca(name), actor=actor))

    try:
        await run_in_threadpool(publish)
    except (HierarchyError, KeyStoreError, CRLUnavailable) as exc:
        return message_page(
            request, "console.lifecycle.crl_failed", 409, link_path=PAGE, detail=str(exc)[:300]
        )
    url = href(language_of(request), PAGE, notice="console.lifecycle.crl_published")
    return RedirectResponse(url, 303, headers=NO_STORE)
