"""Console sessions: a ``__Host-`` cookie naming a row in ``console_sessions``.

The cookie holds 256 random bits; the row stores only their SHA-256. It is
``__Host-hoviyat_console`` (Secure, HttpOnly, SameSite=Strict, Path=/) when the
issuer is https. Over a plain-http development or test issuer browsers refuse
``__Host-`` and ``Secure``, so there, as the login pages do
(:mod:`idp.login.sessions`), it is the plain ``hoviyat_console`` without Secure
and with the same other flags. A session ends on sign-out, after
``HOVIYAT_CONSOLE_IDLE_MINUTES`` without a request, and at most
:data:`MAX_LIFETIME` after sign-in.

The sign-in under way has its own short cookie (SameSite=Lax, since it must
come back on the redirect from the login pages), bound to the OIDC state,
nonce and PKCE verifier stored server-side.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlmodel import Session

from idp.settings import Settings
from idp.storage import console as store
from idp.storage.console import ConsoleSession

MAX_LIFETIME = timedelta(hours=12)
SIGN_IN_LIFETIME = timedelta(minutes=15)


def now() -> datetime:
    return datetime.now(UTC)


def is_secure(settings: Settings) -> bool:
    return settings.issuer.startswith("https://")


def session_cookie(settings: Settings) -> str:
    return "__Host-hoviyat_console" if is_secure(settings) else "hoviyat_console"


def sign_in_cookie(settings: Settings) -> str:
    return "__Host-hoviyat_console_signin" if is_secure(settings) else "hoviyat_console_signin"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def cookie_token(request: Request, name: str) -> str | None:
    token = request.cookies.get(name)
    return token if token and len(token) <= 100 else None


def live(request: Request, db: Session, settings: Settings) -> ConsoleSession | None:
    """The live session this browser names, its idle clock restarted; None if none."""
    token = cookie_token(request, session_cookie(settings))
    if token is None:
        return None
    moment = now()
    idle_since = moment - timedelta(minutes=settings.console_idle_minutes)
    row = store.live_session(db, digest(token), moment, idle_since)
    if row is not None:
        store.touch_session(db, row.id, moment)
    return row


def start(db: Session, *, person_key: str, display_name: str, acr: str) -> str:
    """A new session (always a new token); returns the cookie value."""
    token = secrets.token_urlsafe(32)
    moment = now()
    store.insert_session(
        db,
        ConsoleSession(
            id=secrets.token_urlsafe(18),
            token_digest=digest(token),
            person_key=person_key,
            display_name=display_name[:200],
            acr=acr,
            created_at=moment,
            last_seen_at=moment,
            expires_at=moment + MAX_LIFETIME,
        ),
    )
    return token


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, *, strict: bool
) -> None:
    response.set_cookie(
        name,
        value,
        path="/",
        secure=is_secure(settings),
        httponly=True,
        samesite="strict" if strict else "lax",
    )


def clear_cookie(response: Response, settings: Settings, name: str, *, strict: bool) -> None:
    response.delete_cookie(
        name,
        path="/",
        secure=is_secure(settings),
        httponly=True,
        samesite="strict" if strict else "lax",
    )
