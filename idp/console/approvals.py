"""Two-person approval: one person requests an operation, another with the role approves.

Each kind of operation registers an :class:`ApprovalKind`: the role that may
request and decide it, how to describe its payload, and what approving does.
The request, the decision, the operation and their audit entries are stored
in ``console_approvals`` and the audit log; approving runs the operation in
the decision's own transaction, so it happens exactly when the approval is
recorded. Approving one's own request is refused and audited, and the store
refuses it in the UPDATE itself (:func:`idp.storage.console.decide`).

Some operations cannot run inside that transaction: the CA's lifecycle and
ceremony issuance write in transactions of their own (on SQLite a second writer
inside the approval's transaction would wait for it forever). Such a kind has a
``carry_out``. The decision's transaction also claims the approval
(``applying_since``); after it commits, ``carry_out`` runs and its result is
recorded on the approval (``applied_at``, ``result``), audited as ``applied``.
If the worker dies in between, the approval's page (``/console/approvals/<id>``)
shows it approved and not applied, and a holder of the role can carry it out
again once the claim is older than :data:`STALE_CLAIM`: the claim is one
conditional UPDATE, so across processes exactly one resumes it.

Another part of the console adds a kind with :func:`register_kind` and calls
:func:`request` from its own POST route; deciding happens here, at
``POST /console/approvals/<id>/approve`` and ``/reject``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    # Carries out what cannot run in that transaction, after it commits: (the HTTP
    # request, the approval, the person_key carrying it out, the decision's detail
    # (also when resumed: its claim kept it)) -> the result, recorded on the approval.
    # Resumed, it may find its effect done by a worker that died: it must then say so,
    # not do it again (and before an irreversible act, look for it first). It must refuse
    # by returning {"refused": ...}, not by raising: a raise leaves it to be resumed.
    carry_out: Callable[[Request, ConsoleApproval, str, dict[str, Any]], dict[str, Any]] | None = (
        None
    )


# A claim older than this is a worker's that died: another may carry the approval out.
STALE_CLAIM = timedelta(minutes=10)
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
    detail: dict[str, Any] = {}
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
            if state == APPROVED:
                detail = kind.apply(request_, db, approval, user.person_key, now())
                if kind.carry_out is None:  # done in this transaction: recorded with it
                    store.record_effect(db, approval_id, detail, now())
                else:  # claimed here, carried out once this commits
                    store.claim_effect(db, approval_id, now(), now(), decided=detail)
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
    if state == APPROVED and kind is not None and kind.carry_out is not None:
        _carry_out(request_, approval_id, kind, user, detail)
        url = href(language_of(request_), f"/console/approvals/{approval_id}", notice=notice)
        return RedirectResponse(url, 303, headers=NO_STORE)
    back = request_.query_params.get("back", "/console/approvals")
    if back not in ("/console/approvals", "/console/roles"):
        back = "/console/approvals"
    return RedirectResponse(href(language_of(request_), back, notice=notice), 303, headers=NO_STORE)


def _carry_out(
    request_: Request,
    approval_id: int,
    kind: ApprovalKind,
    user: ConsoleUser,
    detail: dict[str, Any],
) -> None:
    """Run ``kind.carry_out`` for a claimed approval and record its result (once)."""
    assert kind.carry_out is not None
    hoviyat = hoviyat_of(request_)
    with hoviyat.db.session() as db:
        approval = store.approval(db, approval_id)
    assert approval is not None
    effect = kind.carry_out(request_, approval, user.person_key, detail)
    with hoviyat.db.session() as db:
        if store.record_effect(db, approval_id, effect, now()):
            _audit(db, user, approval, "applied", effect)


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
NOTICES = ("console.approvals.approved", "console.approvals.rejected", "console.approvals.applied")


@router.get("/approvals")
def approvals_page(
    request_: Request, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> HTMLResponse:
    hoviyat = hoviyat_of(request_)
    with hoviyat.db.session() as db:
        rows = pending_for(db, user)
        unapplied = [
            row
            for row in store.unapplied_approvals(db)
            if row.kind in KINDS and KINDS[row.kind].role in user.roles
        ]
    context = listing(request_, rows, user)
    # Approved, no result recorded: linked to their pages, where one can be resumed.
    context["unapplied"] = listing(request_, unapplied, user)["approvals"]
    return render(request_, "approvals.html", context, title_key="console.approvals")


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


def _parse_id(approval_id: str) -> int | None:
    if not approval_id.isascii() or not approval_id.isdigit() or len(approval_id) > 9:
        return None
    return int(approval_id)


def _one_page(request_: Request, approval_id: int, user: ConsoleUser) -> Response:
    with hoviyat_of(request_).db.session() as db:
        row = store.approval(db, approval_id)
    kind = KINDS.get(row.kind) if row is not None else None
    if row is None or kind is None:
        return _gone(request_)
    if kind.role not in user.roles:
        raise _refuse_role(request_, user, kind)
    language = language_of(request_)
    unapplied = row.state == APPROVED and row.applied_at is None
    claim = row.applying_since
    notice = request_.query_params.get("notice")
    return render(
        request_,
        "approval.html",
        {
            "approval": {
                "id": row.id,
                "kind_key": kind.title_key,
                "description": kind.describe(row.payload, language),
                "state": row.state,
                "requested_by": row.requested_by[:12],
                "approved_by": (row.approved_by or "")[:12],
                "created_at": row.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "decided_at": row.decided_at.strftime("%Y-%m-%d %H:%M UTC")
                if row.decided_at
                else "",
                "applied_at": row.applied_at.strftime("%Y-%m-%d %H:%M UTC")
                if row.applied_at
                else "",
                # Before it is applied, ``result`` holds the decision's detail only.
                "result": sorted((row.result or {}).items()) if row.applied_at else [],
                "unapplied": unapplied,
                "resumable": unapplied and (claim is None or claim < now() - STALE_CLAIM),
                "yours": row.requested_by == user.person_key,
            },
            "stale_minutes": int(STALE_CLAIM.total_seconds() // 60),
            "notice_key": notice if notice in NOTICES else None,
        },
        title_key="console.approvals.one",
    )


@router.get("/approvals/{approval_id}")
async def approval_page(
    request_: Request, approval_id: str, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> Response:
    parsed = _parse_id(approval_id)
    if parsed is None:
        return _gone(request_)
    return await run_in_threadpool(_one_page, request_, parsed, user)


@router.post("/approvals/{approval_id}/apply")
async def resume(
    request_: Request, approval_id: str, user: ConsoleUser = Depends(require_role(*ANY_ROLE))
) -> Response:
    """Carry out an approved request whose worker died before recording its result.

    The two-person decision was made already; resuming it is open to any holder
    of the kind's role (the requester included), and audited as ``resumed``.
    """
    check_csrf(request_, await request_.form())
    parsed = _parse_id(approval_id)
    if parsed is None:
        return _gone(request_)
    return await run_in_threadpool(_resume_now, request_, parsed, user)


def _resume_now(request_: Request, approval_id: int, user: ConsoleUser) -> Response:
    hoviyat = hoviyat_of(request_)
    with hoviyat.db.session() as db:
        approval = store.approval(db, approval_id)
        kind = KINDS.get(approval.kind) if approval is not None else None
        if approval is None or kind is None or kind.carry_out is None:
            return _gone(request_)
        if kind.role not in user.roles:
            missing = kind
        else:
            missing = None
            # The decision's detail, kept by its claim: the effect is filed as decided, so
            # one the dead worker carried out already is found rather than done twice.
            decided = dict(approval.result or {})
            if not store.claim_effect(db, approval_id, now(), now() - STALE_CLAIM):
                return _gone(request_)  # not approved, done already, or under way elsewhere
            _audit(db, user, approval, "resumed")
    if missing is not None:
        raise _refuse_role(request_, user, missing)
    _carry_out(request_, approval_id, kind, user, decided)
    url = href(
        language_of(request_),
        f"/console/approvals/{approval_id}",
        notice="console.approvals.applied",
    )
    return RedirectResponse(url, 303, headers=NO_STORE)
