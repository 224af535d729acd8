"""Direct routes: the busiest exact paths answered without FastAPI's router.

FastAPI spends more CPU routing a request, solving its dependencies and
passing it through its exception layers than a verification costs itself
(about half of a worker's main-thread time at load). The few paths that
back-office systems call thousands of times a second are therefore looked up
in a dictionary here and handed straight to their handler. Each is listed in
:mod:`idp.features` beside the router that declares its FastAPI route, which
documents it in OpenAPI and names it in metrics; errors go through the
application's own exception handlers, so an answer cannot tell which way it
came. ``HOVIYAT_DIRECT_ROUTES=false`` leaves every request to FastAPI's router.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]
_HANDLER_KEY = "hoviyat.direct_handler"


@dataclass(frozen=True)
class DirectRoute:
    """``handler`` answers ``method path`` (an exact path) for the FastAPI route declared there."""

    method: str
    path: str
    handler: Handler


async def json_body(request: Request, model: type[M]) -> M:
    """The body validated as ``model``, failing exactly as a FastAPI body parameter does."""
    raw = await request.body()
    if not raw:
        # FastAPI reads an empty body as a missing one, not as malformed JSON.
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing], body=raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        errors: list[Any] = [
            {**detail, "loc": ("body", *detail["loc"])}
            for detail in error.errors(include_url=False)
        ]
        raise RequestValidationError(errors, body=raw) from None


class DirectRoutes:
    """The direct paths' table, and the middleware chain their answers pass through.

    ``wrap`` puts Hoviyat's front door (request limits, security headers,
    access log) around the handler dispatch, as it sits around FastAPI's
    router; Starlette's and FastAPI's outer layers (error page, telemetry,
    body-size bookkeeping: coroutine frames that every suspension walks twice)
    are left out. Their one duty that applies, a 500 problem for an unexpected
    error, is the wrapper's too.
    """

    def __init__(
        self,
        fastapi: FastAPI,
        direct: Iterable[DirectRoute],
        wrap: Callable[[ASGIApp], ASGIApp],
    ) -> None:
        self.fastapi = fastapi
        routes = {
            (method, route.path): route
            for route in _declared_routes(fastapi.routes)
            for method in getattr(route, "methods", None) or ()
            if hasattr(route, "path")
        }
        # The FastAPI route is kept in the scope for the access log and metrics labels.
        self.table: dict[tuple[str, str], tuple[Handler, BaseRoute | None]] = {}
        for entry in direct:
            key = (entry.method, entry.path)
            if key not in routes:
                raise LookupError(f"direct route {entry.method} {entry.path} has no FastAPI route")
            self.table[key] = (entry.handler, routes[key])
        self.app = wrap(self._dispatch)

    def lookup(self, scope: Scope) -> tuple[Handler, BaseRoute | None] | None:
        return self.table.get((scope["method"], _route_path(scope)))

    async def answer(
        self, entry: tuple[Handler, BaseRoute | None], scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["app"] = self.fastapi
        scope["route"] = entry[1]
        scope[_HANDLER_KEY] = entry[0]
        await self.app(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await scope[_HANDLER_KEY](request)
        except Exception as error:  # answered as FastAPI's handlers answer it
            response = await self._handled(request, error)
        await response(scope, receive, send)

    async def _handled(self, request: Request, error: Exception) -> Response:
        for kind in type(error).__mro__:
            handler = self.fastapi.exception_handlers.get(kind)
            # Anything else goes on to the front door: a 413 if the body
            # outgrew its limit, else the 500 problem (``wrap``'s duty).
            if handler is not None and kind is not Exception:
                return await _answered(handler, request, error)
        raise error


async def _answered(handler: Callable[..., Any], request: Request, error: Exception) -> Response:
    response = handler(request, error)
    return await response if inspect.isawaitable(response) else response  # type: ignore[no-any-return]


class DirectFastAPI(FastAPI):
    """FastAPI whose direct paths are answered before its own middleware stack."""

    direct: DirectRoutes | None = None
    # Runs on every scope before anything reads it: the trusted proxy's headers
    # (idp.http.trusted_proxy), decided on the real peer.
    front: Callable[[Scope], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None:
            self.front(scope)
        if scope["type"] == "http" and self.direct is not None:
            entry = self.direct.lookup(scope)
            if entry is not None:
                await self.direct.answer(entry, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path as the router matches it: without the ``root_path`` a proxy mounted us at."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _declared_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    # FastAPI keeps an included router as a branch holding the original router;
    # Hoviyat's routers carry their prefix in each route's own path.
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _declared_routes(included.routes)
        else:
            yield route
