"""Browser login sessions: the ``login_sessions`` statements.

The hot ones are Core statements on the table and hand back detached model
objects (:mod:`idp.storage.rows`): every step of a returning browser reads
its session, and the ORM's select cost several times the query. A step that
changes the object (a step-up) saves it through :func:`save`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col
from sqlmodel import select as sqlmodel_select

from idp.storage.login import LoginSession
from idp.storage.oidc import OidcGrant
from idp.storage.rows import detached, transient

SESSIONS = LoginSession.__table__  # type: ignore[attr-defined]
_INSERT = insert(SESSIONS)
_BY_TOKEN_DIGEST = select(SESSIONS).where(SESSIONS.c.token_digest == bindparam("token_digest"))
_BY_ID = select(SESSIONS).where(SESSIONS.c.id == bindparam("session_id"))


def _row(values: RowMapping) -> LoginSession:
    return detached(LoginSession, {column.name: values[column.name] for column in SESSIONS.c})


def live_by_token_digest(db: Session, token_digest: str, now: datetime) -> LoginSession | None:
    """The session whose cookie token has this digest, if it has not ended or expired."""
    row = db.connection().execute(_BY_TOKEN_DIGEST, {"token_digest": token_digest}).mappings()
    found = row.first()
    if found is None or found["ended_at"] is not None or found["expires_at"] <= now:
        return None
    return _row(found)


def by_id(db: Session, session_id: str) -> LoginSession | None:
    """The session with this id, live or not (a row read by Core, as the login pages do)."""
    found = db.connection().execute(_BY_ID, {"session_id": session_id}).mappings().first()
    return _row(found) if found is not None else None


def reread(db: Session, session_id: str) -> LoginSession | None:
    """The session as committed now (after a conditional UPDATE waited for another writer)."""
    return db.get(LoginSession, session_id, populate_existing=True)


def unsaved(values: Mapping[str, Any]) -> LoginSession:
    """A new session object holding ``values`` (every column), built without the
    model's constructor (every login makes one), not stored yet."""
    return transient(LoginSession, values)


def insert_session(db: Session, row: LoginSession) -> None:
    # A Core insert (the ORM's unit of work cost more than the insert); the
    # object then counts as stored, so a later step-up updates it in place.
    db.execute(_INSERT, {column.name: getattr(row, column.name) for column in SESSIONS.c})
    make_transient_to_detached(row)


def save(db: Session, row: LoginSession) -> None:
    """Write what changed on a session read or inserted by this module."""
    db.add(row)
    db.flush()


def set_entity(db: Session, session_id: str, entity_national_id: str | None) -> None:
    db.execute(
        update(SESSIONS)
        .where(SESSIONS.c.id == session_id)
        .values(entity_national_id=entity_national_id)
    )


def end(db: Session, session_id: str, now: datetime) -> bool:
    """Mark the session ended, in every worker at once; True if it was live."""
    result = db.execute(
        update(SESSIONS)
        .where(SESSIONS.c.id == session_id)
        .where(SESSIONS.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def prune(db: Session, before: datetime) -> int:
    """Delete sessions that expired or ended before ``before``; how many."""
    result = db.execute(
        delete(SESSIONS).where(or_(SESSIONS.c.expires_at < before, SESSIONS.c.ended_at < before))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_grants(db: Session, session_ids: set[str]) -> list[OidcGrant]:
    """The grants issued under these sessions and not revoked (logout ends them)."""
    return list(
        db.exec(
            sqlmodel_select(OidcGrant).where(
                col(OidcGrant.session_id).in_(sorted(session_ids)),
                col(OidcGrant.revoked_at).is_(None),
            )
        ).all()
    )
