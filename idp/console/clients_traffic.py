"""A client's recent traffic for its console page: what it asked and how much was refused.

Every act of a client (a token at /token, a verification, a certificate...) is
an audit entry with ``actor_type="client"`` and the client id as ``actor_id``;
a refused one has outcome ``refused``. Each window is one aggregate over the
``(actor_id, created_at, id)`` index (``ix_audit_entries_actor_time``), so the
page reads only the client's own rows of the window. A failed client
authentication at /token is not audited (the caller is not known to be the
client) and so is not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlmodel import Session

from idp.storage.models import AuditEntry

REFUSED = "refused"
WINDOWS = (
    ("console.clients.traffic.day", timedelta(hours=24)),
    ("console.clients.traffic.week", timedelta(days=7)),
)
_entries = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Window:
    label_key: str  # a console message naming the window
    requests: int
    refused: int

    @property
    def refusal_rate(self) -> str:
        """The share refused, as a percentage with one decimal ("—" with no requests)."""
        if self.requests == 0:
            return "—"
        return f"{100 * self.refused / self.requests:.1f}%"


def _count(session: Session, client_id: str, since: datetime) -> tuple[int, int]:
    c = _entries.c
    statement = select(func.count(), func.sum(case((c.outcome == REFUSED, 1), else_=0))).where(
        c.actor_id == client_id, c.created_at >= since, c.actor_type == "client"
    )
    row = session.execute(statement).one()
    return int(row[0]), int(row[1] or 0)


def recent_traffic(session: Session, client_id: str, now: datetime) -> list[Window]:
    """The client's requests and refusals over the last 24 hours and the last 7 days."""
    windows = []
    for label_key, length in WINDOWS:
        requests, refused = _count(session, client_id, now - length)
        windows.append(Window(label_key, requests, refused))
    return windows
