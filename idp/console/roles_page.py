"""The roles page (administrators only): who holds which console role, and changes to it.

A grant or a revocation is a request that a second administrator approves
(:mod:`idp.console.approvals`): no single administrator can make themselves or
anyone else an auditor or CA operator alone. A person is named by their
national code when the request is made (Persian, Arabic-Indic or ASCII digits,
checked by :func:`verifiers.identifiers.validate_national_code`); what is stored
is its keyed digest and, for the approver, its last three digits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.console import approvals
from idp.console.approvals import ApprovalKind, register_kind
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
from idp.login.i18n import Language
from idp.storage import console as store
from idp.storage.console import ConsoleApproval
from idp.tracking import new_tracking_code
from verifiers.identifiers import IdentifierError, validate_national_code

router = APIRouter(include_in_schema=False)
GRANT = "role_grant"
REVOKE = "role_revoke"


add_nav_link("/console/roles", "console.roles", Role.ADMIN)
add_nav_link("/console/approvals", "console.approvals", *Role)


def _person(payload: dict[str, Any]) -> str:
    hint = payload.get("code_hint")
    return f"…{hint}" if hint else str(payload.get("person_key", ""))[:12]


def _describe(payload: dict[str, Any], language: Language) -> str:
    role = translate(f"console.role.{payload.get('role', '')}", language)
    return translate("console.roles.describe", language, role=role, person=_person(payload))


def _role_event(db: Session, approval: ConsoleApproval, approver: str, outcome: str) -> None:
    append(
        db,
        AuditEvent(
            tracking_code=new_tracking_code(),
            event_type="console_role",
            actor_type="console_user",
            actor_id=approver,
            outcome=outcome,
            operation=str(approval.payload["role"]),
            subject_hash=str(approval.payload["person_key"]),
            detail={"approval_id": approval.id, "requested_by": approval.requested_by},
        ),
    )


def _apply_grant(
    _request: Request, db: Session, approval: ConsoleApproval, approver: str, moment: datetime
) -> dict[str, Any]:
    payload = approval.payload
    changed = store.grant_role(
        db, str(payload["person_key"]), str(payload["role"]), approver, moment
    )
    _role_event(db, approval, approver, "granted")
    return {"role": payload["role"], "changed": changed}


def _apply_revoke(
    _request: Request, db: Session, approval: ConsoleApproval, approver: str, moment: datetime
) -> dict[str, Any]:
    payload = approval.payload
    changed = store.revoke_role(db, str(payload["person_key"]), str(payload["role"]))
    _role_event(db, approval, approver, "revoked")
    return {"role": payload["role"], "changed": changed}


register_kind(ApprovalKind(GRANT, Role.ADMIN, "console.roles.kind.grant", _describe, _apply_grant))
register_kind(
    ApprovalKind(REVOKE, Role.ADMIN, "console.roles.kind.revoke", _describe, _apply_revoke)
)


def _page(
    request: Request,
    user: ConsoleUser,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db:
        holders = store.role_holders(db)
        names = store.display_names(db, sorted({row.person_key for row in holders}))
        pending = approvals.pending_for(db, user, GRANT) + approvals.pending_for(db, user, REVOKE)
    language = language_of(request)
    notice = request.query_params.get("notice")
    listing = approvals.listing(request, sorted(pending, key=lambda row: row.id or 0), user)
    return render(
        request,
        "roles.html",
        {
            "holders": [
                {
                    "person_key": row.person_key,
                    "name": names.get(row.person_key, ""),
                    "role": row.role,
                    "granted_at": row.granted_at.strftime("%Y-%m-%d"),
                }
                for row in holders
            ],
            "roles": [role.value for role in Role],
            "errors": {name: translate(key, language) for name, key in (errors or {}).items()},
            "values": values or {},
            "back_path": "/console/roles",
            "approvals": listing["approvals"],
            "notice_key": notice
            if notice in ("console.roles.requested", *approvals.NOTICES)
            else None,
        },
        status_code=status_code,
        title_key="console.roles",
    )


@router.get("/roles")
def roles_page(request: Request, user: ConsoleUser = Depends(require_role(Role.ADMIN))) -> Response:
    return _page(request, user)


@router.post("/roles/grant")
async def request_grant(
    request: Request, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    typed = str(form.get("national_code", ""))[:40]
    role = str(form.get("role", ""))
    return await run_in_threadpool(_request_grant, request, user, typed, role)


def _request_grant(request: Request, user: ConsoleUser, typed: str, role: str) -> Response:
    values = {"national_code": typed, "role": role}
    if role not in {member.value for member in Role}:
        return _page(
            request,
            user,
            errors={"role": "console.roles.error.role"},
            values=values,
            status_code=400,
        )
    try:
        national_code = validate_national_code(typed)
    except IdentifierError as error:
        key = f"console.roles.error.{error.rule}"
        return _page(request, user, errors={"national_code": key}, values=values, status_code=400)
    hoviyat = hoviyat_of(request)
    person_key = subject_hash(hoviyat.secrets.subject_pepper, national_code)
    with hoviyat.db.session() as db:
        if role in store.roles_of(db, person_key):
            held = True
        else:
            held = False
            payload = {"person_key": person_key, "role": role, "code_hint": national_code[-3:]}
            approvals.request(db, GRANT, payload, user)
    if held:
        return _page(
            request,
            user,
            errors={"role": "console.roles.error.holds"},
            values=values,
            status_code=400,
        )
    return _requested(request)


@router.post("/roles/revoke")
async def request_revoke(
    request: Request, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    person_key = str(form.get("person_key", ""))[:64]
    role = str(form.get("role", ""))[:32]
    return await run_in_threadpool(_request_revoke, request, user, person_key, role)


def _request_revoke(request: Request, user: ConsoleUser, person_key: str, role: str) -> Response:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db:
        held = role in store.roles_of(db, person_key)
        if held:
            approvals.request(db, REVOKE, {"person_key": person_key, "role": role}, user)
    if not held:
        return _page(
            request, user, errors={"revoke": "console.roles.error.not_held"}, status_code=400
        )
    return _requested(request)


def _requested(request: Request) -> Response:
    url = href(language_of(request), "/console/roles", notice="console.roles.requested")
    return RedirectResponse(url, 303, headers=NO_STORE)
