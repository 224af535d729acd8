"""Appending audit entries inside the caller's transaction.

An action and its audit entry commit together or not at all: callers pass the
session that carries the action, and never commit in between.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from idp.storage.models import AuditEntry


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


def append(session: Session, event: AuditEvent) -> AuditEntry:
    entry = AuditEntry(
        tracking_code=event.tracking_code,
        event_type=event.event_type,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        service_code=event.service_code,
        legal_basis=event.legal_basis,
        operation=event.operation,
        subject_hash=event.subject_hash,
        outcome=event.outcome,
        detail=event.detail,
    )
    session.add(entry)
    return entry
