"""The citizen's presence code: six digits texted to a number the mobile registry binds
to them, kept only as an HMAC on the assisted session's row.

Acceptance is one conditional UPDATE (:func:`idp.storage.counters.accept_code`);
a wrong code spends an attempt by another, so across workers a code is
accepted at most once and guessed at most ``max_attempts`` times. The
outcomes are the login's (:class:`idp.login.otp.OtpOutcome`), so the audit
log and its labels say the same thing for both.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session

from idp.login.otp import OtpOutcome, normalize
from idp.secrets import ServerSecrets
from idp.storage import counters

_LABEL = b"hoviyat/counters/presence/v1"


def presence_key(server_secrets: ServerSecrets) -> bytes:
    """A key for presence codes only: a login code's digest never verifies here."""
    return hmac.new(server_secrets.subject_pepper, _LABEL, hashlib.sha256).digest()


def digest(key: bytes, session_id: str, code: str) -> str:
    return hmac.new(key, f"{session_id}:{code}".encode(), hashlib.sha256).hexdigest()


def issue(
    db: Session,
    key: bytes,
    session_id: str,
    *,
    now: datetime,
    ttl_seconds: int,
    max_attempts: int,
    max_sends: int,
) -> str | None:
    """A fresh code stored for the session (replacing the last), or None when the
    session no longer awaits presence or has used up its sends."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    stored = counters.set_code(
        db,
        session_id,
        digest=digest(key, session_id, code),
        expires_at=now + timedelta(seconds=ttl_seconds),
        max_attempts=max_attempts,
        max_sends=max_sends,
        now=now,
    )
    return code if stored else None


def check(db: Session, key: bytes, session_id: str, typed: str, now: datetime) -> OtpOutcome:
    code = normalize(typed)
    if len(code) == 6 and code.isascii() and code.isdigit():
        if counters.accept_code(db, session_id, digest(key, session_id, code), now):
            return OtpOutcome.ACCEPTED
    spent = counters.spend_attempt(db, session_id, now)
    row = counters.session_row(db, session_id)
    if row is None or row.present_at is not None or row.code_digest is None:
        return OtpOutcome.USED
    if spent:
        return OtpOutcome.WRONG
    if row.code_expires_at is None or row.code_expires_at <= now or row.expires_at <= now:
        return OtpOutcome.EXPIRED
    return OtpOutcome.EXHAUSTED
