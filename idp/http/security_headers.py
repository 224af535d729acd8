"""Security headers on every response.

- ``Content-Security-Policy``: pages load only our own stylesheet; no script,
  no plugin, no base-URI change, and ``frame-ancestors 'none'`` so no site can
  frame the login pages (clickjacking). ``form-action`` is deliberately left
  out: Chromium applies it to every redirect that follows a form submission,
  and the consent form's answer ends in a redirect to the client's
  ``redirect_uri`` on another origin.
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``; ``Referrer-Policy: no-referrer`` (URLs
  of the login pages carry interaction ids that other sites need not see).

A header the route set itself is left alone. The interactive API docs load
their script from a CDN, so their paths get every header but the CSP.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


class SecurityHeaders:
    """The headers, encoded once; :class:`idp.http.middleware.FrontDoor` adds them."""

    def __init__(
        self,
        csp: str = CONTENT_SECURITY_POLICY,
        csp_exempt_paths: Iterable[str] = ("/docs", "/docs/oauth2-redirect"),
        hsts: bool = False,
    ) -> None:
        self.csp_exempt = frozenset(csp_exempt_paths)
        # HSTS only when served over https (a development http issuer must not pin it).
        common = list(HEADERS) + ([("Strict-Transport-Security", "max-age=31536000")] * hsts)
        self._common = [(name.lower().encode(), value.encode()) for name, value in common]
        self._csp = (b"content-security-policy", csp.encode())

    def add_to(self, start: Message, path: str) -> None:
        """Add to an ``http.response.start`` message the headers its route did not set."""
        headers = list(start.get("headers", ()))
        present = {name.lower() for name, _ in headers}
        if path not in self.csp_exempt and self._csp[0] not in present:
            headers.append(self._csp)
        headers += [pair for pair in self._common if pair[0] not in present]
        start["headers"] = headers
