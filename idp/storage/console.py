"""The console's tables: ``console_roles``, ``console_sessions``, ``console_sign_ins``
and ``console_approvals`` (issue 15).

A person is named by ``person_key``, the keyed digest of their national code
(:func:`idp.audit.log.subject_hash`), never by the code itself: a copy of
these tables says who holds a role only to someone who holds the pepper.

Sessions and pending sign-ins are named by the SHA-256 of the browser's cookie
value; the value itself is never stored. A pending sign-in is spent by one
``DELETE ... RETURNING``, so a callback replayed on another worker finds
nothing. An approval is decided by one conditional UPDATE (still pending, not
the requester's own), so two approvers racing get one winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, delete, insert, or_, select, update
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


class ConsoleRole(SQLModel, table=True):
    """One role held by one person."""

    __tablename__ = "console_roles"

    person_key: str = Field(primary_key=True, max_length=64)
    role: str = Field(primary_key=True, max_length=32)
    granted_at: datetime = Field(sa_type=UtcDateTime)
    # The person_key of the approving admin, or "cli:<operator>" for the bootstrap.
    granted_by: str = Field(max_length=100)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console user; the cookie names it by the digest of its value."""

    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=40)
    token_digest: str = Field(index=True, unique=True, max_length=64)
    person_key: str = Field(index=True, max_length=64)
    display_name: str = Field(max_length=200)
    acr: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UtcDateTime)
    last_seen_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class ConsoleSignIn(SQLModel, table=True):
    """A sign-in under way: what the callback must find (OIDC state, nonce, PKCE verifier)."""

    __tablename__ = "console_sign_ins"

    binding_digest: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=64)
    nonce: str = Field(max_length=64)
    code_verifier: str = Field(max_length=128)
    return_to: str = Field(max_length=500)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


class ConsoleApproval(SQLModel, table=True):
    """An operation one person asked for and another must approve (two-person rule)."""

    __tablename__ = "console_approvals"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    requested_by: str = Field(max_length=64)
    approved_by: str | None = Field(default=None, max_length=64, nullable=True)
    state: str = Field(index=True, max_length=20)
    created_at: datetime = Field(sa_type=UtcDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    # What approving did (migration 1310): claimed by the approving worker in the
    # decision's transaction, done when applied_at is set, with the operation's result.
    applying_since: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


ROLES = ConsoleRole.__table__  # type: ignore[attr-defined]
SESSIONS = ConsoleSession.__table__  # type: ignore[attr-defined]
SIGN_INS = ConsoleSignIn.__table__  # type: ignore[attr-defined]
APPROVALS = ConsoleApproval.__table__  # type: ignore[attr-defined]


# --- roles -----------------------------------------------------------------


def roles_of(db: Session, person_key: str) -> list[str]:
    rows = db.execute(select(ROLES.c.role).where(ROLES.c.person_key == person_key))
    return [str(role) for (role,) in rows]


def role_holders(db: Session) -> list[ConsoleRole]:
    return list(db.scalars(select(ConsoleRole).order_by(ROLES.c.role, ROLES.c.granted_at)))


def grant_role(db: Session, person_key: str, role: str, granted_by: str, now: datetime) -> bool:
    """True if the person did not hold the role before."""
    if role in roles_of(db, person_key):
        return False
    db.execute(
        insert(ROLES).values(
            person_key=person_key, role=role, granted_at=now, granted_by=granted_by
        )
    )
    return True


def revoke_role(db: Session, person_key: str, role: str) -> bool:
    result = db.execute(delete(ROLES).where(ROLES.c.person_key == person_key, ROLES.c.role == role))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- sessions --------------------------------------------------------------


def insert_session(db: Session, row: ConsoleSession) -> None:
    db.add(row)
    db.flush()


def live_session(
    db: Session, token_digest: str, now: datetime, idle_since: datetime
) -> ConsoleSession | None:
    """The session named by ``token_digest``, if not ended, expired or idle since before
    ``idle_since``."""
    return db.scalars(
        select(ConsoleSession).where(
            SESSIONS.c.token_digest == token_digest,
            SESSIONS.c.ended_at.is_(None),
            SESSIONS.c.expires_at > now,
            SESSIONS.c.last_seen_at > idle_since,
        )
    ).first()


def touch_session(db: Session, session_id: str, now: datetime) -> None:
    db.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(last_seen_at=now))


def set_last_seen(db: Session, session_id: str, when: datetime) -> None:
    """For idle-timeout tests and housekeeping: move a session's last activity."""
    touch_session(db, session_id, when)


def end_session(db: Session, session_id: str, now: datetime) -> bool:
    result = db.execute(
        update(SESSIONS)
        .where(SESSIONS.c.id == session_id, SESSIONS.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- pending sign-ins -------------------------------------------------------


def put_sign_in(db: Session, row: ConsoleSignIn, now: datetime) -> None:
    db.execute(delete(SIGN_INS).where(SIGN_INS.c.expires_at <= now))  # housekeeping
    db.add(row)
    db.flush()


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    state: str
    nonce: str
    code_verifier: str
    return_to: str


def take_sign_in(db: Session, binding_digest: str, now: datetime) -> PendingSignIn | None:
    """Spend the pending sign-in (once, across workers); None when absent or expired."""
    row = db.execute(
        delete(SIGN_INS)
        .where(SIGN_INS.c.binding_digest == binding_digest)
        .returning(
            SIGN_INS.c.state,
            SIGN_INS.c.nonce,
            SIGN_INS.c.code_verifier,
            SIGN_INS.c.return_to,
            SIGN_INS.c.expires_at,
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return PendingSignIn(row.state, row.nonce, row.code_verifier, row.return_to)


# --- approvals --------------------------------------------------------------


def request_approval(
    db: Session, kind: str, payload: dict[str, Any], requested_by: str, now: datetime
) -> ConsoleApproval:
    row = ConsoleApproval(
        kind=kind, payload=payload, requested_by=requested_by, state=PENDING, created_at=now
    )
    db.add(row)
    db.flush()
    return row


def approval(db: Session, approval_id: int) -> ConsoleApproval | None:
    return db.get(ConsoleApproval, approval_id)


def pending_approvals(db: Session, kind: str | None = None) -> list[ConsoleApproval]:
    query = select(ConsoleApproval).where(APPROVALS.c.state == PENDING)
    if kind is not None:
        query = query.where(APPROVALS.c.kind == kind)
    return list(db.scalars(query.order_by(APPROVALS.c.id)))


def unapplied_approvals(db: Session) -> list[ConsoleApproval]:
    """Approved requests with no result recorded: under way, or left by a worker that died."""
    query = select(ConsoleApproval).where(
        APPROVALS.c.state == APPROVED, APPROVALS.c.applied_at.is_(None)
    )
    return list(db.scalars(query.order_by(APPROVALS.c.id)))


def decide(db: Session, approval_id: int, decided_by: str, state: str, now: datetime) -> bool:
    """Move a pending request to ``state``; True for the one caller that did.

    Never the requester's own: the condition is in the statement, so no check
    made earlier and raced afterwards can let it through.
    """
    result = db.execute(
        update(APPROVALS)
        .where(
            APPROVALS.c.id == approval_id,
            APPROVALS.c.state == PENDING,
            APPROVALS.c.requested_by != decided_by,
        )
        .values(state=state, approved_by=decided_by, decided_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_effect(
    db: Session,
    approval_id: int,
    now: datetime,
    stale_before: datetime,
    decided: dict[str, Any] | None = None,
) -> bool:
    """Take the right to carry out an approved request; True for the one caller that did.

    Approved, not applied yet, and either never claimed or claimed before
    ``stale_before`` (by a worker that died): one conditional UPDATE, so two
    processes resuming the same approval get one winner. ``decided`` (the
    decision's detail, e.g. the tracking code the effect is to be filed under)
    waits in ``result`` until :func:`record_effect` replaces it, so a resumed
    effect can find what a worker that died had done already.
    """
    values: dict[str, Any] = {"applying_since": now}
    if decided is not None:
        values["result"] = decided
    result = db.execute(
        update(APPROVALS)
        .where(
            APPROVALS.c.id == approval_id,
            APPROVALS.c.state == APPROVED,
            APPROVALS.c.applied_at.is_(None),
            or_(APPROVALS.c.applying_since.is_(None), APPROVALS.c.applying_since < stale_before),
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_effect(db: Session, approval_id: int, effect: dict[str, Any], now: datetime) -> bool:
    """Mark an approved request carried out, with what it did; True the first time only."""
    result = db.execute(
        update(APPROVALS)
        .where(APPROVALS.c.id == approval_id, APPROVALS.c.applied_at.is_(None))
        .values(applied_at=now, result=effect)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def display_names(db: Session, person_keys: list[str]) -> dict[str, str]:
    """The name each person signed in with last (the roles table holds no names)."""
    if not person_keys:
        return {}
    rows = db.execute(
        select(SESSIONS.c.person_key, SESSIONS.c.display_name)
        .where(SESSIONS.c.person_key.in_(person_keys))
        .order_by(SESSIONS.c.created_at)
    )
    return {key: name for key, name in rows}


def holds_any(db: Session, role: str) -> bool:
    """Whether anyone holds ``role``."""
    return (
        db.execute(select(ROLES.c.person_key).where(ROLES.c.role == role).limit(1)).first()
        is not None
    )
