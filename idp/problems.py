"""RFC 9457 problem details: the one error shape of every HTTP API.

Each failure a caller can cause has a stable ``type`` URI under
``https://hoviyat.ir/problems/``; ``detail`` says what to change.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

PROBLEM_BASE = "https://hoviyat.ir/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere under a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body

    def response(self, instance: str | None = None) -> JSONResponse:
        return JSONResponse(
            self.to_dict(instance),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


def bad_request(slug: str, detail: str, **extensions: Any) -> Problem:
    return Problem(400, slug, "Bad request", detail, **extensions)


BEARER_REALM = "hoviyat"


# pydantic's JSON parser (jiter) stops at this depth; Python's json module at the
# interpreter's recursion limit, which is deeper still.
MAX_JSON_DEPTH = 200


def json_too_deep() -> Problem:
    """Well-formed JSON the parser refused for its depth: say so, not "not valid JSON"."""
    return Problem(
        400,
        "json-too-deep",
        "JSON nested too deep",
        f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects; "
        "a request needs only a flat object",
        max_depth=MAX_JSON_DEPTH,
    )


def is_too_deep(error: BaseException | dict[str, Any] | None) -> bool:
    """Whether a parse failure was the depth limit (``json_invalid`` or a RecursionError)."""
    if isinstance(error, RecursionError):
        return True
    if isinstance(error, dict) and error.get("type") == "json_invalid":
        return "recursion limit" in str(error.get("msg", "")) + str(error.get("ctx", ""))
    return False


def unauthorized(detail: str) -> Problem:
    """A token was sent and is not acceptable (RFC 6750 §3.1 ``invalid_token``)."""
    return Problem(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="{BEARER_REALM}", error="invalid_token"'},
    )


def credentials_required(detail: str) -> Problem:
    """No bearer token at all: RFC 6750 §3.1 says the challenge then carries no error code."""
    return Problem(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": f'Bearer realm="{BEARER_REALM}"'},
    )


def forbidden(slug: str, detail: str, **extensions: Any) -> Problem:
    return Problem(403, slug, "Forbidden", detail, **extensions)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def _retry_later(status: int, slug: str, title: str, detail: str, retry_after: int) -> Problem:
    """A problem whose Retry-After header (RFC 9110 §10.2.3) and member say the same."""
    return Problem(
        status,
        slug,
        title,
        detail,
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


def too_many_requests(detail: str, retry_after: int) -> Problem:
    return _retry_later(429, "rate-limited", "Too many requests", detail, retry_after)


def service_unavailable(detail: str, retry_after: int = 5) -> Problem:
    return _retry_later(503, "registry-unavailable", "Service unavailable", detail, retry_after)


def database_unavailable(detail: str, retry_after: int = 5) -> Problem:
    """The store cannot be reached or did not commit in time; nothing was acknowledged."""
    return _retry_later(503, "database-unavailable", "Service unavailable", detail, retry_after)


class ProblemDocument(BaseModel):
    """The problem document as the OpenAPI description shows it (RFC 9457 §3)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


_STATUS_MEANINGS = {
    400: "Malformed request (JSON, characters)",
    401: "Missing, expired or foreign access token",
    403: "Operation outside the client's service policy",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid field or identifier (the problem names the field and the rule)",
    429: "Rate limit of the service policy reached (see Retry-After)",
    503: "A registry cannot answer now (see Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries saying that ``statuses`` answer with a problem."""
    schema = {"$ref": "#/components/schemas/ProblemDocument"}
    return {
        status: {
            "model": ProblemDocument,
            "description": _STATUS_MEANINGS.get(status, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }
