"""Dropping login rows that can no longer matter: old sessions, spent codes, past windows.

Nothing reads these rows after they expire, so deleting them changes no
answer; it only keeps the tables small. Run it from any periodic job (one
worker is enough; two at once only delete the same rows).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col

from idp.storage.login import LoginCounter, LoginOtp, LoginSession

# Ended or expired sessions stay a day, so "who was logged in" questions of
# the last day can still name the session an audit entry mentions.
SESSION_GRACE = timedelta(days=1)
COUNTER_WINDOWS_KEPT = timedelta(hours=2)


def prune(db_session: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    sessions = db_session.execute(
        delete(LoginSession).where(
            or_(
                col(LoginSession.expires_at) < now - SESSION_GRACE,
                col(LoginSession.ended_at) < now - SESSION_GRACE,
            )
        )
    )
    codes = db_session.execute(delete(LoginOtp).where(col(LoginOtp.expires_at) < now))
    counters = db_session.execute(
        delete(LoginCounter).where(
            col(LoginCounter.window_start) < int((now - COUNTER_WINDOWS_KEPT).timestamp())
        )
    )
    return {
        "sessions": sessions.rowcount,  # type: ignore[attr-defined]
        "codes": codes.rowcount,  # type: ignore[attr-defined]
        "counters": counters.rowcount,  # type: ignore[attr-defined]
    }
