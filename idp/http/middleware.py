"""ASGI middleware: request limits, metrics and one structured log line per request.

Written as plain ASGI callables (Starlette style) rather than BaseHTTPMiddleware,
which costs a task and a queue per request on a hot path.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class _TooLarge(Exception):
    pass


async def _send_problem(send: Send, problem: Problem) -> None:
    response = problem.response()
    await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class RequestLimits:
    """413 for bodies over the limit (declared or streamed), 415 for non-JSON to ``/v1``."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Larger limits for paths that take files (legacy CSVs for reconciliation).
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _framing_headers(scope["headers"])
        limit = self.path_limits.get(scope["path"].rstrip("/"), self.max_body_bytes)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_problem(send, _too_large(limit))
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await _send_problem(
                send,
                Problem(400, "invalid-characters", "Bad request", "the query holds a NUL byte"),
            )
            return
        method = scope["method"]
        has_body = (declared not in (None, "0")) or "transfer-encoding" in headers
        if method in ("POST", "PUT", "PATCH") and has_body and scope["path"].startswith("/v1/"):
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if not _accepted_media_type(scope["path"], media_type):
                await _send_problem(
                    send,
                    Problem(
                        415,
                        "unsupported-media-type",
                        "Unsupported media type",
                        f"send the body as application/json, not {media_type or 'nothing'}",
                    ),
                )
                return
        if "transfer-encoding" not in headers:
            # Without Transfer-Encoding a request's body is exactly its
            # Content-Length, or empty (RFC 9112 §6.3), and that length was
            # checked above: nothing to count as it streams in.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_problem(send, _too_large(limit))


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


class AccessLog:
    """Metrics and a JSON access-log line (via the root JSON formatter) per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
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
