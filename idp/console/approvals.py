"""Two-person approval: one person requests an operation, another with the role approves.

Each kind of operation registers an :class:`ApprovalKind`: the role that may
request and decide it, how to describe its payload, and what approving does.
The request, the decision, the operation and their audit entries are stored
in ``console_approvals`` and the audit log; approving runs the operation in
the decision's own transaction, so it happens exactly when the approval is
recorded. Approving one's own request is refused and audited, and the store
refuses it in the UPDATE itself (:func:`idp.storage.console.decide`).

Another part of the console adds a kind with :func:`register_kind` and calls
:func:`request` from its own POST route; deciding happens here, at
``POST /console/approvals/<id>/approve`` and ``/reject``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append
from idp.console.framework import (
    NO_STORE,
    ConsoleResponse,
    ConsoleUser,
    audit_refusal,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    refusal_page,
    render,
    require_role,
)
from idp.console.i18n import translate
from idp.console.roles import Role
from idp.console.sessions import now
from idp.login.i18n import Language
from idp.storage import console as store
from idp.storage.console import APPROVED, REJECTED, ConsoleApproval
from idp.tracking import new_tracking_code

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class ApprovalKind:
    name: str  # stored in console_approvals.kind, at most 40 characters
    role: Role  # who may request it and who may approve it
    title_key: str  # a console message naming the operation
    describe: Callable[[dict[str, Any], Language], str]  # the payload, for the approver
    # Carries the operation out in the approval's transaction: (the approver's HTTP
    # request, for the app's services; the session; the approval; the approver's
    # person_key; now) -> detail for the audit entry.
    apply: Callable[[Request, Session, ConsoleApproval, str, datetime], dict[str, Any]]


KINDS: dict[str, ApprovalKind] = {}


def register_kind(kind: ApprovalKind) -> None:
    if kind.name in KINDS:
        raise ValueError(f"approval kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind


def _audit(
    db: Session,
    user: ConsoleUser,
    approval: ConsoleApproval,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    append(
        db,
        AuditEvent(
            tracking_code=new_tracking_code(),
            event_type="console_approval",
            actor_type="console_user",
            actor_id=user.person_key,
            outcome=outcome,
            operation=approval.kind,
            subject_hash=approval.payload.get("person_key"),
            detail={"approval_id": approval.id, **(detail or {})},
        ),
    )


def request(db: Session, kind: str, payload: dict[str, Any], user: ConsoleUser) -> ConsoleApproval:
    """Record ``user``'s request for another person's approval (audited, same transaction)."""
    if kind not in KINDS:
        raise ValueError(f"unknown approval kind {kind!r}")
    approval = store.request_approval(db, kind, payload, user.person_key, now())
    _audit(db, user, approval, "requested")
    return approval


def pending_for(db: Session, user: ConsoleUser, kind: str | None = None) -> list[ConsoleApproval]:
    """Pending requests of the kinds ``user``'s roles may decide."""
    return [
        row
        for row in store.pending_approvals(db, kind)
        if row.kind in KINDS and KINDS[row.kind].role in user.roles
    ]


def _refuse_role(request_: Request, user: ConsoleUser, kind: ApprovalKind) -> ConsoleResponse:
    tracking_code = audit_refusal(
        request_, user, "missing_role", needed=[kind.role.value], approval_kind=kind.name
    )
    shown = translate(f"console.role.{kind.role.value}", language_of(request_))
    return ConsoleResponse(
        refusal_page(request_, "console.refused.approval_role", tracking_code, roles=shown)
    )


async def _decide(request_: Request, approval_id: str, user: ConsoleUser, state: str) -> Response:
    check_csrf(request_, await request_.form())
    if not approval_id.isascii() or not approval_id.isdigit() or len(approval_id) > 9:
        return _gone(request_)  # no such request: the same page as one decided already
    return await run_in_threadpool(_decide_now, request_, int(approval_id), user, state)


def _decide_now(request_: Request, approval_id: int, user: ConsoleUser, state: str) -> Response:
    hoviyat = hoviyat_of(request_)
    # One session at a time: a refusal is audited after this one has ended
    # (on SQLite a second writer would wait for the first forever).
    refusal: tuple[str, ApprovalKind] | None = None
    with hoviyat.db.session() as db:
        approval = store.approval(db, approval_id)
        kind = KINDS.get(approval.kind) if approval is not None else None
        if approval is None or kind is None or approval.state != store.PENDING:
            return _gone(request_)
        if kind.role not in user.roles:
            refusal = ("missing_role", kind)
        elif approval.requested_by == user.person_key:
            refusal = ("self_approval", kind)
        elif not store.decide(db, approval_id, user.person_key, state, now()):
            return _gone(request_)  # another approver decided first
        else:
            detail = (
                kind.apply(request_, db, approval, user.person_key, now())
                if state == APPROVED
                else {}
            )
            _audit(db, user, approval, state, detail)
    if refusal is not None:
        reason, kind = refusal
        if reason == "missing_role":
            raise _refuse_role(request_, user, kind)
        tracking_code = audit_refusal(
            request_, user, reason, approval_id=approval_id, approval_kind=kind.name
        )
        raise ConsoleResponse(
            refusal_page(request_, "console.refused.self_approval", tracking_code)
        )
    notice = "console.approvals.approved" if state == APPROVED else "console.approvals.rejected"
    back = request_.query_params.get("back", "/console/approvals")
    if back not in ("/console/approvals", "/console/roles"):
        back = "/console/approvals"
    return RedirectResponse(href(language_of(request_), back, notice=notice), 303, headers=NO_STORE)


def _gone(request_: Request) -> HTMLResponse:
    return render(
        request_,
        "message.html",
        {
            "message_key": "console.approvals.gone",
            "is_error": True,
            "link_path": "/console/approvals",
            "link_key": "console.approvals",
        },
        status_code=409,
        title_key="console.approvals",
    )


ANY_ROLE = tuple(Role)
NOTICES = ("console.approvals.approved", "console.approvals.rejected")


@router.get("/approvals")
def approvals_page(
    request_: Request, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> HTMLResponse:
    hoviyat = hoviyat_of(request_)
    with hoviyat.db.session() as db:
        rows = pending_for(db, user)
    return render(
        request_, "approvals.html", listing(request_, rows, user), title_key="console.approvals"
    )


def listing(request_: Request, rows: list[ConsoleApproval], user: ConsoleUser) -> dict[str, Any]:
    language = language_of(request_)
    notice = request_.query_params.get("notice")
    return {
        "approvals": [
            {
                "id": row.id,
                "kind_key": KINDS[row.kind].title_key,
                "description": KINDS[row.kind].describe(row.payload, language),
                "requested_by": row.requested_by[:12],
                "created_at": row.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "yours": row.requested_by == user.person_key,
            }
            for row in rows
        ],
        "notice_key": notice if notice in NOTICES else None,
    }


@router.post("/approvals/{approval_id}/approve")
async def approve(
    request_: Request, approval_id: str, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> Response:
    return await _decide(request_, approval_id, user, APPROVED)


@router.post("/approvals/{approval_id}/reject")
async def reject(
    request_: Request, approval_id: str, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> Response:
    return await _decide(request_, approval_id, user, REJECTED)
