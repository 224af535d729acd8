"""Appending audit entries inside the caller's transaction.

An action and its audit entry commit together or not at all: callers pass the
session that carries the action, and never commit in between.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from idp.storage.audit_entries import insert_entries, insert_entry
from idp.storage.group_commit import BulkKind
from idp.storage.models import AuditEntry, utcnow


@dataclass(frozen=True)
class AuditEvent:
    tracking_code: str
    event_type: str
    actor_type: str
    outcome: str
    actor_id: str | None = None
    service_code: str | None = None
    legal_basis: str | None = None
    operation: str | None = None
    subject_hash: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def subject_hash(pepper: bytes, identifier: str) -> str:
    """HMAC-SHA256 of a national code or national identifier: searchable only with the pepper."""
    return hmac.new(pepper, identifier.encode("ascii"), hashlib.sha256).hexdigest()


def _values(event: AuditEvent) -> dict[str, Any]:
    return {
        "created_at": utcnow(),
        "tracking_code": event.tracking_code,
        "event_type": event.event_type,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "service_code": event.service_code,
        "legal_basis": event.legal_basis,
        "operation": event.operation,
        "subject_hash": event.subject_hash,
        "outcome": event.outcome,
        "detail": event.detail,
    }


def append(session: Session, event: AuditEvent) -> AuditEntry:
    """Insert ``event`` in the session's transaction; the returned entry is a detached copy.

    The entry gets its leaf index later, from the sequencer (:mod:`idp.audit.sequencer`).
    """
    values = _values(event)
    entry_id = insert_entry(session.connection(), values)
    return AuditEntry.model_construct(id=entry_id, **values)


def append_many(session: Session, events: Iterable[AuditEvent]) -> int:
    """Insert many events in one statement (batch jobs); returns how many."""
    return insert_events(session.connection(), events)


def insert_events(connection: Connection, events: Iterable[AuditEvent]) -> int:
    """:func:`append_many` for a caller that holds a Core connection, not a session."""
    rows = [_values(event) for event in events]
    insert_entries(connection, rows)
    return len(rows)


#: An audit entry as a group-committed write (``committer.run(audit_entry(event))``):
#: a batch's entries go in one multi-row insert, with no SAVEPOINT each.
audit_entry: BulkKind[AuditEvent] = BulkKind("audit entry", insert_events)
