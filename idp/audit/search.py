"""Finding audit entries by the auditor's filters.

National codes and national identifiers are never stored; they are turned into
subject hashes with the pepper at query time (:func:`idp.audit.log.subject_hash`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from idp.audit.log import AuditEvent, append_many, subject_hash
from idp.storage.models import AuditEntry
from verifiers.identifiers import validate_national_code, validate_national_id

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    actor_id: str | None = None
    service_code: str | None = None
    tracking_code: str | None = None
    outcome: str | None = None
    national_code: str | None = None
    national_id: str | None = None
    after_id: int | None = None
    limit: int = 100


def subject_hashes(pepper: bytes, query: AuditQuery) -> list[str]:
    """The subject hashes a query asks for; raises ValueError naming a bad identifier."""
    hashes = []
    if query.national_code:
        hashes.append(subject_hash(pepper, validate_national_code(query.national_code)))
    if query.national_id:
        hashes.append(subject_hash(pepper, validate_national_id(query.national_id)))
    return hashes


def conditions(pepper: bytes, query: AuditQuery) -> list[ColumnElement[bool]]:
    c = AuditEntry.__table__.c  # type: ignore[attr-defined]
    where: list[ColumnElement[bool]] = []
    if query.since is not None:
        where.append(c.created_at >= query.since)
    if query.until is not None:
        where.append(c.created_at < query.until)
    for column, value in (
        (c.event_type, query.event_type),
        (c.actor_id, query.actor_id),
        (c.service_code, query.service_code),
        (c.tracking_code, query.tracking_code),
        (c.outcome, query.outcome),
    ):
        if value is not None:
            where.append(column == value)
    hashes = subject_hashes(pepper, query)
    if hashes:
        where.append(c.subject_hash.in_(hashes))
    if query.after_id is not None:
        where.append(c.id > query.after_id)
    return where


def search(session: Session, pepper: bytes, query: AuditQuery) -> Sequence[AuditEntry]:
    """Entries matching every given filter, oldest first, at most ``query.limit``."""
    limit = max(1, min(query.limit, MAX_PAGE))
    statement = (
        select(AuditEntry)
        .where(*conditions(pepper, query))
        .order_by(col(AuditEntry.id))
        .limit(limit)
    )
    return session.exec(statement).all()


def record_subject_search(
    session: Session,
    hashes: list[str],
    *,
    tracking_code: str,
    actor_type: str,
    actor_id: str | None,
    service_code: str | None = None,
    legal_basis: str | None = None,
) -> None:
    """Log a search by person: it is itself an access to their data, shown in their history."""
    append_many(
        session,
        (
            AuditEvent(
                tracking_code=tracking_code,
                event_type="audit_searched",
                actor_type=actor_type,
                actor_id=actor_id,
                service_code=service_code,
                legal_basis=legal_basis,
                subject_hash=value,
                outcome="success",
            )
            for value in hashes
        ),
    )
