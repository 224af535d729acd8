"""The front door: request limits, security headers, metrics and an access-log line.

One plain ASGI layer (Starlette style, not BaseHTTPMiddleware, which costs a
task and a queue per request) applies the three to every request. They were
three layers once; each added a coroutine frame that every suspension of a
request walks twice and a wrapper around every message sent, a tenth of a
worker's time on its busiest path. The rules themselves live apart:
:class:`RequestLimits` here, :class:`~idp.http.security_headers.SecurityHeaders`
in its own module.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.http.security_headers import SecurityHeaders
from idp.problems import Problem

log = logging.getLogger("hoviyat.access")

REQUESTS = Counter("hoviyat_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "hoviyat_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
JSON_TYPES = ("application/json", "application/problem+json")
ErrorPage = Callable[[Request, Any], Response | Awaitable[Response]]
RefusalPage = Callable[[Scope, Problem], Response | None]


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class RequestLimits:
    """413 for bodies over the limit (declared or streamed), 415 for non-JSON to ``/v1``."""

    max_body_bytes: int
    # Larger limits for paths that take files (legacy CSVs for reconciliation).
    path_limits: dict[str, int] = field(default_factory=dict)

    def limit_for(self, path: str) -> int:
        return self.path_limits.get(path.rstrip("/"), self.max_body_bytes)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> Problem | None:
        """Why the request is refused before its body is read, if it is."""
        declared = headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.limit_for(scope["path"])
        ):
            return _too_large(self.limit_for(scope["path"]))
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            return Problem(400, "invalid-characters", "Bad request", "the query holds a NUL byte")
        has_body = (declared not in (None, "0")) or "transfer-encoding" in headers
        path = scope["path"]
        if scope["method"] in ("POST", "PUT", "PATCH") and has_body and path.startswith("/v1/"):
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if not _accepted_media_type(path, media_type):
                return Problem(
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    f"send the body as application/json, not {media_type or 'nothing'}",
                )
        return None


class FrontDoor:
    """Every HTTP request's first and last stop.

    ``unexpected``, when given, answers an error that escaped the app before
    its response started (the direct routes' stand-in for Starlette's
    ServerErrorMiddleware, which sits outside this layer in FastAPI's stack).
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: RequestLimits,
        headers: SecurityHeaders,
        unexpected: ErrorPage | None = None,
        refusal_page: RefusalPage | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.headers = headers
        self.unexpected = unexpected
        # A protocol's own form of the refusals above (ACME problems under /acme/);
        # None from it, or no hook, sends the RFC 9457 problem.
        self.refusal_page = refusal_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        responded = False
        path = scope.get("path", "")
        add_headers = self.headers.add_to

        async def send_out(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                add_headers(message, path)
            await send(message)

        try:
            framing = _framing_headers(scope["headers"])
            refusal = self.limits.refusal(scope, framing)
            if refusal is not None:
                await self._refuse(scope, send_out, refusal)
            elif "transfer-encoding" not in framing:
                # Without Transfer-Encoding a request's body is exactly its
                # Content-Length, or empty (RFC 9112 §6.3), and that length was
                # checked above: nothing to count as it streams in.
                await self.app(scope, receive, send_out)
            else:
                await self._counted(scope, receive, send_out, lambda: responded)
        except Exception as error:
            if self.unexpected is None or responded:
                raise
            page = self.unexpected(Request(scope, receive), error)
            response = await page if inspect.isawaitable(page) else page
            await response(scope, receive, send_out)
        finally:
            record_request(scope, status, started)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, responded: Callable[[], bool]
    ) -> None:
        limit = self.limits.limit_for(scope["path"])
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            if not responded():
                await self._refuse(scope, send, _too_large(limit))

    async def _refuse(self, scope: Scope, send: Send, problem: Problem) -> None:
        page = self.refusal_page(scope, problem) if self.refusal_page is not None else None
        if page is None:
            await _send_problem(send, problem)
        else:
            await page({"type": "http"}, _empty_receive, send)


def record_request(scope: Scope, status: int, started: float) -> None:
    """Metrics and a JSON access-log line (via the root JSON formatter)."""
    elapsed = time.perf_counter() - started
    route = _route_of(scope)
    _counter(scope["method"], route, status).inc()
    _histogram(route).observe(elapsed)
    if log.isEnabledFor(logging.INFO):
        log.info(
            "request",
            extra={
                "http": {
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }
            },
        )


async def _send_problem(send: Send, problem: Problem) -> None:
    response = problem.response()
    await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"content-type"))


def _framing_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The few headers the limits look at (decoding every header cost more than the checks)."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in ((name.lower(), value) for name, value in raw)
        if name in _FRAMING
    }


def _accepted_media_type(path: str, media_type: str) -> bool:
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return True
    # Endpoints that take other bodies by their own standards.
    return path.startswith(("/v1/reconciliations", "/v1/certificates")) and media_type in (
        "text/csv",
        "application/pkcs10",
        "application/x-pem-file",
        "multipart/form-data",
    )


def _too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "Request body too large", f"send at most {limit} bytes")


@lru_cache(maxsize=4096)
def _counter(method: str, route: str, status: int) -> Any:
    # labels() hashes and locks on every call; the children are few and fixed.
    return REQUESTS.labels(method, route, str(status))


@lru_cache(maxsize=1024)
def _histogram(route: str) -> Any:
    return LATENCY.labels(route)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
