"""A client's recent traffic for its console page: what it asked and how much was refused.

Every act of a client (a token at /token, a verification, a certificate...) is
an audit entry with ``actor_type="client"`` and the client id as ``actor_id``;
a refused one has outcome ``refused``. Each window is one indexed count
(:func:`idp.storage.client_traffic.client_acts`). A failed client
authentication in a registered client's name at /token, /par, /introspect or
/revoke is audited as refused (:mod:`idp.oauth.refused_clients`), so it counts
here; one that names no registered client is not audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from idp.storage.client_traffic import client_acts

REFUSED = "refused"
WINDOWS = (
    ("console.clients.traffic.day", timedelta(hours=24)),
    ("console.clients.traffic.week", timedelta(days=7)),
)


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


def recent_traffic(session: Session, client_id: str, now: datetime) -> list[Window]:
    """The client's requests and refusals over the last 24 hours and the last 7 days."""
    windows = []
    for label_key, length in WINDOWS:
        requests, refused = client_acts(session, client_id, now - length, REFUSED)
        windows.append(Window(label_key, requests, refused))
    return windows
