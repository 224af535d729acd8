"""A client's acts in the audit log, counted: the console's traffic figures.

Every act of a client is an audit entry with ``actor_type="client"`` and the
client id as ``actor_id``. One aggregate over the ``(actor_id, created_at, id)``
index (``ix_audit_entries_actor_time``) reads only that client's rows of the window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlmodel import Session

from idp.storage.models import AuditEntry

_entries = AuditEntry.__table__  # type: ignore[attr-defined]


def client_acts(session: Session, client_id: str, since: datetime, refused: str) -> tuple[int, int]:
    """How many acts ``client_id`` did since ``since``, and how many had outcome ``refused``."""
    c = _entries.c
    statement = select(func.count(), func.sum(case((c.outcome == refused, 1), else_=0))).where(
        c.actor_id == client_id, c.created_at >= since, c.actor_type == "client"
    )
    row = session.execute(statement).one()
    return int(row[0]), int(row[1] or 0)
