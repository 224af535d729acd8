"""CSRF protection for every login form: the signed double-submit cookie (OWASP).

A GET sets a random cookie (if the browser has none) and puts
HMAC(key, cookie) in the form; a POST is accepted only when the form's token
is that HMAC of the cookie it arrives with. A cross-site page can make the
browser send the cookie but can neither read it nor compute the token, and a
cookie planted from a sibling subdomain is useless without the key (with
https the cookie is ``__Host-`` and cannot be planted at all).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from idp.settings import Settings


def cookie_name(settings: Settings) -> str:
    return "__Host-hoviyat_csrf" if settings.issuer.startswith("https://") else "hoviyat_csrf"


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def token_for(request: Request, settings: Settings, key: bytes) -> tuple[str, str | None]:
    """The form token for this browser, and a new cookie value to set when it has none."""
    value = request.cookies.get(cookie_name(settings))
    if value and len(value) <= 100:
        return _sign(key, value), None
    value = secrets.token_urlsafe(32)
    return _sign(key, value), value


def set_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        cookie_name(settings),
        value,
        path="/",
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="lax",
    )


def cookie_value(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(settings))


def is_valid(request: Request, settings: Settings, key: bytes, token: str | None) -> bool:
    value = cookie_value(request, settings)
    if not value or not token:
        return False
    return hmac.compare_digest(_sign(key, value), token)
