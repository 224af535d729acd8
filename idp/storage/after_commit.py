"""Work that must wait until a session's transaction has committed.

Some follow-ups must not run inside the transaction that makes them due: on
SQLite a second write from the same thread would wait forever for the first
transaction's lock, and the follow-up (an issuance recording its own intent)
needs its own transaction anyway. If the transaction rolls back, nothing runs.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlmodel import Session


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once, just after ``session``'s current transaction commits."""
    event.listen(session, "after_commit", lambda _session: action(), once=True)
