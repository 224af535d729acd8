"""Dropping login rows that can no longer matter: old sessions, spent codes, past windows.

Nothing reads these rows after they expire, so deleting them changes no
answer; it only keeps the tables small. Run it from any periodic job (one
worker is enough; two at once only delete the same rows).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from idp.storage import login_codes, login_limits, login_sessions, passkeys

# Ended or expired sessions stay a day, so "who was logged in" questions of
# the last day can still name the session an audit entry mentions.
SESSION_GRACE = timedelta(days=1)
COUNTER_WINDOWS_KEPT = timedelta(hours=2)


def prune(db_session: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    return {
        "sessions": login_sessions.prune(db_session, now - SESSION_GRACE),
        "codes": login_codes.prune(db_session, now),
        "counters": login_limits.prune(db_session, int((now - COUNTER_WINDOWS_KEPT).timestamp())),
        "passkey_challenges": passkeys.prune_challenges(db_session, now),
    }
