"""Every ACME answer's headers, and ACME problems for every error under ``/acme/``.

RFC 8555 §6.5: every response to a POST carries a fresh ``Replay-Nonce``
(refusals too, so a client retries ``badNonce`` at once); §7.1: every answer
but the directory links the directory (``rel="index"``). ACME answers are
per account and never cached (``Cache-Control: no-store``).

:func:`install` adds the :class:`AcmeProblem` handler and wraps the app's
other handlers, so a 404, a bad body, a database outage or a bug under
``/acme/`` leaves as an ``urn:ietf:params:acme:error:*`` document, not as
one of Hoviyat's RFC 9457 types that ACME clients cannot read.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from idp.acme.paths import AcmePaths
from idp.acme.problems import PROBLEM_MEDIA_TYPE, AcmeProblem, malformed, server_internal
from idp.acme.server import acme_server
from idp.problems import Problem
from idp.storage.availability import DATABASE_UNAVAILABLE

log = logging.getLogger("hoviyat.acme")
PREFIX = "/acme/"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def route_path(request: Request) -> str:
    """The path as routes match it: without the ``root_path`` a proxy mounted us at."""
    path: str = request.scope.get("path", "")
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def under_acme(request: Request) -> bool:
    return route_path(request).startswith(PREFIX)


def acme_headers(request: Request, paths: AcmePaths | None = None) -> dict[str, str]:
    """``Replay-Nonce``, ``Cache-Control`` and, when the CA is known, the directory ``Link``."""
    server = acme_server(request)
    headers = {"Replay-Nonce": server.nonces.new(), "Cache-Control": "no-store"}
    if paths is None:
        parts = route_path(request).split("/")
        ca = parts[2] if len(parts) > 2 else ""
        paths = server.paths(ca) if server.serves(ca) else None
    if paths is not None:
        headers["Link"] = f'<{paths.directory}>;rel="index"'
    return headers


def acme_json(
    request: Request,
    paths: AcmePaths,
    body: dict[str, Any] | list[Any],
    status: int = 200,
    *,
    location: str | None = None,
    links: Iterable[tuple[str, str]] = (),
) -> JSONResponse:
    """An ACME resource: JSON with the nonce, index link, ``Location`` and extra ``Link``s."""
    response = JSONResponse(body, status_code=status, headers=acme_headers(request, paths))
    if location is not None:
        response.headers["Location"] = location
    for url, rel in links:
        response.headers.append("Link", f'<{url}>;rel="{rel}"')
    return response


def problem_response(request: Request, problem: AcmeProblem) -> JSONResponse:
    headers = acme_headers(request)
    headers.update(problem.headers)
    return JSONResponse(
        problem.to_dict(),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _as_acme(request: Request, exc: Exception) -> AcmeProblem:
    """The ACME problem an error under /acme/ stands for."""
    if isinstance(exc, AcmeProblem):
        return exc
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        problem = malformed(str(exc.detail), status if 400 <= status < 500 else 400)
        if exc.headers and "Allow" in exc.headers:
            problem.headers["Allow"] = exc.headers["Allow"]
        return problem
    if isinstance(exc, RequestValidationError):
        return malformed("the request does not have the form this resource takes")
    if isinstance(exc, DataError):
        return malformed("a value in the request cannot be stored (for example a NUL byte)")
    if isinstance(exc, Problem):
        retry = exc.headers.get("Retry-After")
        if exc.status == 429:
            return AcmeProblem("rateLimited", exc.detail, 429, headers=exc.headers)
        if exc.status >= 500:
            return server_internal(exc.detail, exc.status, int(retry) if retry else None)
        return malformed(exc.detail, exc.status)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log.warning("database unavailable on %s: %s", route_path(request), type(exc).__name__)
        return server_internal(
            "the database cannot be reached or did not answer in time; try again shortly",
            503,
            retry_after=5,
        )
    log.exception("unhandled error on %s", route_path(request))
    return server_internal("an unexpected error occurred; it has been logged")


def _wrapped(original: Handler | None) -> Handler:
    async def delegate(request: Request, exc: Any) -> Response:
        assert original is not None
        answer = original(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    async def handler(request: Request, exc: Any) -> Response:
        if original is not None and not under_acme(request):
            return await delegate(request, exc)
        if original is not None and isinstance(exc, StarletteHTTPException):
            if exc.status_code == 405:
                # The app's handler names every method the resource serves (RFC 9110
                # §10.2.1) and answers OPTIONS itself; other methods get its Allow.
                answer = await delegate(request, exc)
                if request.method == "OPTIONS":
                    return answer
                problem = malformed(f"{request.method} is not served here", 405)
                problem.headers["Allow"] = answer.headers.get("Allow", "")
                return problem_response(request, problem)
        return problem_response(request, _as_acme(request, exc))

    return handler


def front_door_refusal(scope: Scope, problem: Problem) -> Response | None:
    """The front door's refusals (body too large, a NUL in the query) as ACME problems
    under /acme/ (:class:`idp.http.middleware.FrontDoor`); None elsewhere."""
    request = Request(scope)
    if not under_acme(request):
        return None
    return problem_response(request, _as_acme(request, problem))


def install(app: FastAPI) -> None:
    """The AcmeProblem handler, and the app's other handlers made ACME-aware under /acme/."""

    async def acme_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AcmeProblem)
        return problem_response(request, exc)

    app.add_exception_handler(AcmeProblem, acme_problem)
    kinds: list[Any] = [
        StarletteHTTPException,
        RequestValidationError,
        DataError,
        Problem,
        *DATABASE_UNAVAILABLE,
        Exception,
    ]
    for kind in kinds:
        app.add_exception_handler(kind, _wrapped(app.exception_handlers.get(kind)))
