"""OAuth error responses (RFC 6749 §5.2).

The token, introspection and revocation endpoints answer in OAuth's own error
format, which every OAuth client library parses; the rest of the API uses
RFC 9457 problems.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **self.headers}
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    # RFC 6749 §5.2: a failed HTTP Basic authentication answers 401 with a challenge.
    if basic:
        return OAuthError(
            "invalid_client",
            description,
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="hoviyat"'},
        )
    return OAuthError("invalid_client", description, status=401)
