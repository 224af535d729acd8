"""One-time codes: the ``login_otps`` statements.

Attempts and acceptance are conditional UPDATEs whose row count decides, so
two workers can neither go beyond the attempt limit nor both accept one code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from idp.storage.login import LoginOtp


def supersede(db: Session, session_id: str, interaction_id: str, now: datetime) -> None:
    """Earlier unused codes of this session and interaction stop working."""
    db.execute(
        update(LoginOtp)
        .where(
            col(LoginOtp.session_id) == session_id,
            col(LoginOtp.interaction_id) == interaction_id,
            col(LoginOtp.consumed_at).is_(None),
        )
        .values(consumed_at=now)
    )


def add(db: Session, row: LoginOtp) -> None:
    db.add(row)
    db.flush()


def pending(db: Session, session_id: str, interaction_id: str) -> LoginOtp | None:
    """The latest code of this session and interaction not yet accepted or replaced."""
    return db.exec(
        select(LoginOtp)
        .where(
            LoginOtp.session_id == session_id,
            LoginOtp.interaction_id == interaction_id,
            col(LoginOtp.consumed_at).is_(None),
        )
        .order_by(col(LoginOtp.created_at).desc())
        .limit(1)
    ).first()


def spend_attempt(db: Session, otp_id: str, now: datetime) -> bool:
    """One attempt counted, if the code is unused, unexpired and has attempts left."""
    spent = db.execute(
        update(LoginOtp)
        .where(
            col(LoginOtp.id) == otp_id,
            col(LoginOtp.consumed_at).is_(None),
            col(LoginOtp.attempts) < col(LoginOtp.max_attempts),
            col(LoginOtp.expires_at) > now,
        )
        .values(attempts=col(LoginOtp.attempts) + 1)
    )
    return bool(spent.rowcount)  # type: ignore[attr-defined]


def reread(db: Session, otp_id: str) -> LoginOtp | None:
    """The code as committed now (after a conditional UPDATE)."""
    return db.get(LoginOtp, otp_id, populate_existing=True)


def consume(db: Session, otp_id: str, now: datetime) -> bool:
    """Accept (or withdraw) the code once across all workers; True if this call did."""
    result = db.execute(
        update(LoginOtp)
        .where(col(LoginOtp.id) == otp_id, col(LoginOtp.consumed_at).is_(None))
        .values(consumed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def prune(db: Session, now: datetime) -> int:
    """Delete expired codes; how many."""
    result = db.execute(delete(LoginOtp).where(col(LoginOtp.expires_at) < now))
    return int(result.rowcount)  # type: ignore[attr-defined]
