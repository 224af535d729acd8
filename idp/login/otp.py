"""One-time codes for level substantial: issue, and check with limits enforced by the database.

A code is 6 random digits, valid ``otp_ttl_seconds``; the row keeps
HMAC(key, id:code), never the code. Checking first spends an attempt with a
conditional UPDATE (``attempts < max_attempts AND consumed_at IS NULL AND
expires_at > now``), then accepts with another (``consumed_at IS NULL``): two
workers can neither go beyond the attempt limit nor both accept one code.
Sending is limited per mobile number and per national code (``idp.ratelimit``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from idp.storage import login_codes
from idp.storage.login import LoginOtp
from verifiers.digits import normalize_digits


class OtpOutcome(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    USED = "used"


def _digest(key: bytes, otp_id: str, code: str) -> str:
    return hmac.new(key, f"{otp_id}:{code}".encode("ascii"), hashlib.sha256).hexdigest()


def issue_code(
    db_session: Session,
    *,
    key: bytes,
    session_id: str,
    interaction_id: str,
    national_code: str,
    mobile: str,
    ttl_seconds: int,
    max_attempts: int,
) -> tuple[LoginOtp, str]:
    """A new code for this session and interaction; earlier unused ones stop working."""
    now = datetime.now(UTC)
    login_codes.supersede(db_session, session_id, interaction_id, now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    otp_id = secrets.token_urlsafe(18)
    row = LoginOtp(
        id=otp_id,
        session_id=session_id,
        interaction_id=interaction_id,
        national_code=national_code,
        mobile=mobile,
        code_digest=_digest(key, otp_id, code),
        max_attempts=max_attempts,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    login_codes.add(db_session, row)
    return row, code


def pending_code(db_session: Session, session_id: str, interaction_id: str) -> LoginOtp | None:
    """The latest code of this session and interaction not yet accepted or replaced."""
    return login_codes.pending(db_session, session_id, interaction_id)


def check_code(db_session: Session, *, key: bytes, otp_id: str, code: str) -> OtpOutcome:
    now = datetime.now(UTC)
    spent = login_codes.spend_attempt(db_session, otp_id, now)
    row = login_codes.reread(db_session, otp_id)
    if row is None:
        return OtpOutcome.USED
    if not spent:
        if row.consumed_at is not None:
            return OtpOutcome.USED
        if row.expires_at <= now:
            return OtpOutcome.EXPIRED
        return OtpOutcome.EXHAUSTED
    if not hmac.compare_digest(row.code_digest, _digest(key, otp_id, code)):
        return OtpOutcome.WRONG
    accepted = login_codes.consume(db_session, otp_id, now)
    return OtpOutcome.ACCEPTED if accepted else OtpOutcome.USED


def attempts_left(row: LoginOtp) -> int:
    return max(0, row.max_attempts - row.attempts)


def withdraw_code(db_session: Session, otp_id: str) -> None:
    """The text could not be sent: the code must not be enterable either."""
    login_codes.consume(db_session, otp_id, datetime.now(UTC))


def attempts_now(db_session: Session, otp_id: str) -> int:
    """Attempts left on the code as committed now (0 when it is gone)."""
    row = login_codes.reread(db_session, otp_id)
    return attempts_left(row) if row is not None else 0


def normalize(typed: str) -> str:
    """The typed code in ASCII digits without separators (phones type Persian digits too)."""
    return normalize_digits(typed)
