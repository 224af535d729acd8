"""Service counters (Article 14): offices, their members, and assisted sessions.

Tables ``counter_offices``, ``counter_members`` and ``assisted_sessions``. A
person appears only as ``person_key``/``clerk_key``/``citizen_key``, the keyed
digest the audit log uses for subjects (:func:`idp.audit.log.subject_hash`):
no national code is stored in clear.

The citizen's presence code lives on the session row as an HMAC, never the
code. It is accepted by one conditional UPDATE (:func:`accept_code`: right
digest, not yet present, attempts left, not expired), so two workers racing
with one code cannot both accept it, and a wrong guess spends an attempt by
another conditional UPDATE (:func:`spend_attempt`), so no worker goes past the
limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, Column, update
from sqlmodel import Field, Session, SQLModel, col, select

from idp.storage.passkeys import CHALLENGES
from idp.storage.types import UtcDateTime

CLERK = "clerk"
SUPERVISOR = "supervisor"


class CounterOffice(SQLModel, table=True):
    """A legal entity registered as a service counter, with the services its clerks may run."""

    __tablename__ = "counter_offices"

    national_id: str = Field(primary_key=True, max_length=11)
    name: str = Field(max_length=300)
    services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)


class CounterMember(SQLModel, table=True):
    """A person working at an office, as ``clerk`` or ``supervisor``."""

    __tablename__ = "counter_members"

    office_id: str = Field(primary_key=True, max_length=11)
    person_key: str = Field(primary_key=True, max_length=64, index=True)
    role: str = Field(primary_key=True, max_length=20)
    display_name: str = Field(max_length=200)
    added_at: datetime = Field(sa_type=UtcDateTime)


class AssistedSession(SQLModel, table=True):
    """A clerk serving one present citizen, for a limited time, at one office."""

    __tablename__ = "assisted_sessions"

    id: str = Field(primary_key=True, max_length=40)
    office_id: str = Field(max_length=11, index=True)
    clerk_key: str = Field(max_length=64, index=True)
    clerk_name: str = Field(max_length=200)
    citizen_key: str = Field(max_length=64, index=True)
    tracking_code: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    code_digest: str | None = Field(default=None, max_length=64)
    code_attempts: int = Field(default=0)
    code_max_attempts: int = Field(default=0)
    code_expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    codes_sent: int = Field(default=0)
    present_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    acts: int = Field(default=0)
    flagged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    flagged_by: str | None = Field(default=None, max_length=64)
    flag_reason: str | None = Field(default=None, max_length=500)


def _count(result: object) -> int:
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_office(db: Session, office: CounterOffice) -> None:
    db.add(office)
    db.flush()


def office(db: Session, national_id: str) -> CounterOffice | None:
    return db.get(CounterOffice, national_id)


def add_member(db: Session, member: CounterMember) -> None:
    db.add(member)
    db.flush()


def member_roles(db: Session, office_id: str, person_key: str) -> set[str]:
    """The roles the person holds at the office (empty: not a member)."""
    rows = db.exec(
        select(CounterMember.role).where(
            CounterMember.office_id == office_id, CounterMember.person_key == person_key
        )
    ).all()
    return set(rows)


def memberships(db: Session, person_key: str) -> Sequence[CounterMember]:
    return db.exec(
        select(CounterMember)
        .where(CounterMember.person_key == person_key)
        .order_by(col(CounterMember.office_id), col(CounterMember.role))
    ).all()


def add_session(db: Session, row: AssistedSession) -> None:
    db.add(row)
    db.flush()


def session_row(db: Session, session_id: str) -> AssistedSession | None:
    """The session as committed now (after a conditional UPDATE)."""
    return db.get(AssistedSession, session_id, populate_existing=True)


def set_code(
    db: Session,
    session_id: str,
    *,
    digest: str,
    expires_at: datetime,
    max_attempts: int,
    max_sends: int,
    now: datetime,
) -> bool:
    """A new presence code replaces the last, while the session awaits presence and
    has sends left; True if this call stored it."""
    result = db.execute(
        update(AssistedSession)
        .where(
            col(AssistedSession.id) == session_id,
            col(AssistedSession.present_at).is_(None),
            col(AssistedSession.ended_at).is_(None),
            col(AssistedSession.expires_at) > now,
            col(AssistedSession.codes_sent) < max_sends,
        )
        .values(
            code_digest=digest,
            code_attempts=0,
            code_max_attempts=max_attempts,
            code_expires_at=expires_at,
            codes_sent=col(AssistedSession.codes_sent) + 1,
        )
    )
    return _count(result) == 1


def withdraw_code(db: Session, session_id: str) -> None:
    """The text could not be sent: its code must not be enterable."""
    db.execute(
        update(AssistedSession)
        .where(col(AssistedSession.id) == session_id)
        .values(code_digest=None)
    )


def _code_open(now: datetime) -> tuple[object, ...]:
    return (
        col(AssistedSession.present_at).is_(None),
        col(AssistedSession.ended_at).is_(None),
        col(AssistedSession.code_digest).is_not(None),
        col(AssistedSession.code_attempts) < col(AssistedSession.code_max_attempts),
        col(AssistedSession.code_expires_at) > now,
        col(AssistedSession.expires_at) > now,
    )


def accept_code(db: Session, session_id: str, digest: str, now: datetime) -> bool:
    """The one statement that accepts a presence code: True for exactly one caller."""
    result = db.execute(
        update(AssistedSession)
        .where(
            col(AssistedSession.id) == session_id,
            col(AssistedSession.code_digest) == digest,
            *_code_open(now),  # type: ignore[arg-type]
        )
        .values(
            present_at=now,
            code_digest=None,
            code_attempts=col(AssistedSession.code_attempts) + 1,
        )
    )
    return _count(result) == 1


def accept_passkey(db: Session, session_id: str, now: datetime) -> bool:
    """The one statement that accepts presence proven by the citizen's passkey (its
    assertion already verified): True for exactly one caller, while the session is
    live and not yet present. The presence code, if any, stops working."""
    return _update_awaiting(db, session_id, now, present_at=now, code_digest=None)


def spend_attempt(db: Session, session_id: str, now: datetime) -> bool:
    """A wrong code spends one attempt, if the code is still open; True if counted."""
    result = db.execute(
        update(AssistedSession)
        .where(col(AssistedSession.id) == session_id, *_code_open(now))  # type: ignore[arg-type]
        .values(code_attempts=col(AssistedSession.code_attempts) + 1)
    )
    return _count(result) == 1


def count_act(db: Session, session_id: str, now: datetime) -> bool:
    """One more act in a live, proven session; False once it has ended or expired."""
    result = db.execute(
        update(AssistedSession)
        .where(
            col(AssistedSession.id) == session_id,
            col(AssistedSession.present_at).is_not(None),
            col(AssistedSession.ended_at).is_(None),
            col(AssistedSession.expires_at) > now,
        )
        .values(acts=col(AssistedSession.acts) + 1)
    )
    return _count(result) == 1


def end(db: Session, session_id: str, now: datetime) -> bool:
    result = db.execute(
        update(AssistedSession)
        .where(col(AssistedSession.id) == session_id, col(AssistedSession.ended_at).is_(None))
        .values(ended_at=now)
    )
    return _count(result) == 1


def flag(db: Session, session_id: str, *, by: str, reason: str, now: datetime) -> bool:
    """Flag once; True if this call did."""
    result = db.execute(
        update(AssistedSession)
        .where(col(AssistedSession.id) == session_id, col(AssistedSession.flagged_at).is_(None))
        .values(flagged_at=now, flagged_by=by, flag_reason=reason)
    )
    return _count(result) == 1


def review_queue(db: Session, office_id: str, limit: int) -> Sequence[AssistedSession]:
    """The office's sessions, newest first: unflagged ones are the supervisor's queue."""
    return db.exec(
        select(AssistedSession)
        .where(AssistedSession.office_id == office_id)
        .order_by(col(AssistedSession.created_at).desc())
        .limit(limit)
    ).all()


def all_offices(db: Session) -> Sequence[CounterOffice]:
    return db.exec(select(CounterOffice).order_by(col(CounterOffice.name))).all()


def members(db: Session, office_id: str) -> Sequence[CounterMember]:
    return db.exec(
        select(CounterMember)
        .where(CounterMember.office_id == office_id)
        .order_by(col(CounterMember.role), col(CounterMember.display_name))
    ).all()


def link_session(db: Session, digest: str, purpose: str, now: datetime) -> str | None:
    """The assisted session a live confirmation link (stored as its digest in
    ``passkey_challenges`` under ``purpose``) belongs to; None if unknown, spent or expired."""
    found = db.execute(
        select(CHALLENGES.c.session_id).where(
            CHALLENGES.c.challenge == digest,
            CHALLENGES.c.purpose == purpose,
            CHALLENGES.c.expires_at > now,
        )
    ).first()
    return None if found is None else str(found[0])


def live_link(
    db: Session, session_id: str, purpose: str, now: datetime
) -> tuple[str, datetime] | None:
    """The session's live confirmation link, as (digest, expiry); None if it has none."""
    found = db.execute(
        select(CHALLENGES.c.challenge, CHALLENGES.c.expires_at).where(
            CHALLENGES.c.session_id == session_id,
            CHALLENGES.c.purpose == purpose,
            CHALLENGES.c.expires_at > now,
        )
    ).first()
    return None if found is None else (str(found[0]), found[1])


def end_awaiting(db: Session, session_id: str, now: datetime) -> bool:
    """End a session that still awaits presence (the citizen said it is not them);
    True for exactly one caller, False once present, ended or expired."""
    return _update_awaiting(db, session_id, now, ended_at=now, code_digest=None)


def _update_awaiting(db: Session, session_id: str, now: datetime, **values: object) -> bool:
    """Set ``values`` on the session if it still awaits presence (live, not yet present),
    in one conditional UPDATE: True for exactly one caller across workers."""
    result = db.execute(
        update(AssistedSession)
        .where(
            col(AssistedSession.id) == session_id,
            col(AssistedSession.present_at).is_(None),
            col(AssistedSession.ended_at).is_(None),
            col(AssistedSession.expires_at) > now,
        )
        .values(**values)
    )
    return _count(result) == 1
