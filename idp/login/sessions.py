"""Browser login sessions, kept in the database and named by a cookie.

The cookie holds 256 random bits; the ``login_sessions`` row stores only their
SHA-256, so neither a database copy nor a log opens a session. Raising the
level (step-up) rotates the token. Sessions end by logout or expiry.

Cookie name: ``__Host-hoviyat_session`` (Secure, HttpOnly, SameSite=Lax,
Path=/) when the issuer is https. Browsers reject ``__Host-`` cookies without
``Secure`` and drop ``Secure`` cookies on plain http hosts other than
localhost, so with an ``http://`` issuer (development) the cookie is the plain
``hoviyat_session`` without ``Secure`` — same flags otherwise.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlmodel import Session

from idp.settings import Settings
from idp.storage import login_sessions
from idp.storage.login import AuthenticatedPerson, LoginSession

SECURE_COOKIE = "__Host-hoviyat_session"
PLAIN_COOKIE = "hoviyat_session"


def cookie_is_secure(settings: Settings) -> bool:
    return settings.issuer.startswith("https://")


def cookie_name(settings: Settings) -> str:
    return SECURE_COOKIE if cookie_is_secure(settings) else PLAIN_COOKIE


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.hoviyat.settings
    return settings


def session_row(request: Request, db_session: Session) -> LoginSession | None:
    """The live session named by this request's cookie, or None."""
    token = request.cookies.get(cookie_name(_settings_of(request)))
    if not token or len(token) > 100:
        return None
    return login_sessions.live_by_token_digest(db_session, token_digest(token), _now())


def current_login(request: Request, db_session: Session) -> AuthenticatedPerson | None:
    """The login this browser carries, if any and still valid (used by ``prompt=none``)."""
    row = session_row(request, db_session)
    return AuthenticatedPerson.of_session(row, row.entity_national_id) if row is not None else None


def start_session(
    db_session: Session,
    *,
    national_code: str,
    acr: str,
    amr: list[str],
    tracking_code: str,
    ttl_seconds: int,
) -> tuple[LoginSession, str]:
    """A fresh session (always a new id: logging in never reuses a token the browser had)."""
    row, token = new_session(
        national_code=national_code,
        acr=acr,
        amr=amr,
        tracking_code=tracking_code,
        ttl_seconds=ttl_seconds,
    )
    store_session(db_session, row)
    return row, token


def new_session(
    *, national_code: str, acr: str, amr: list[str], tracking_code: str, ttl_seconds: int
) -> tuple[LoginSession, str]:
    """A session and its cookie token, not stored yet (what comes next is decided first)."""
    token = secrets.token_urlsafe(32)
    now = _now()
    row = login_sessions.unsaved(
        {
            "id": secrets.token_urlsafe(18),
            "token_digest": token_digest(token),
            "national_code": national_code,
            "acr": acr,
            "amr": amr,
            "auth_time": now,
            "mobile": None,
            "entity_national_id": None,
            "tracking_code": tracking_code,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "ended_at": None,
        },
    )
    return row, token


def store_session(db_session: Session, row: LoginSession) -> None:
    login_sessions.insert_session(db_session, row)


def raise_level(
    db_session: Session, row: LoginSession, *, acr: str, amr: list[str], mobile: str | None
) -> str:
    """Step-up: record the higher level and the added methods, and rotate the cookie token."""
    token = secrets.token_urlsafe(32)
    row.token_digest = token_digest(token)
    row.acr = acr
    row.amr = sorted(set(row.amr) | set(amr))
    row.auth_time = _now()
    if mobile is not None:
        row.mobile = mobile
    login_sessions.save(db_session, row)
    return token


def choose_entity(db_session: Session, session_id: str, entity_national_id: str | None) -> None:
    login_sessions.set_entity(db_session, session_id, entity_national_id)


def end_session(db_session: Session, session_id: str) -> bool:
    """Log out: the session stops working in every worker at once. True if it was live."""
    return login_sessions.end(db_session, session_id, _now())


def set_session_cookie(response: Response, settings: Settings, token: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(settings),
        token,
        max_age=max_age,
        path="/",
        secure=cookie_is_secure(settings),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings),
        path="/",
        secure=cookie_is_secure(settings),
        httponly=True,
        samesite="lax",
    )
