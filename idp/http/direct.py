"""Direct routes: the busiest exact paths answered without FastAPI's router.

FastAPI spends more CPU routing a request, solving its dependencies and
passing it through its exception layers than a verification costs itself
(about half of a worker's main-thread time at load). The few paths that
back-office systems call thousands of times a second are therefore looked up
in a dictionary here and handed straight to their handler. They stay declared
as FastAPI routes too, so the OpenAPI document describes them, and their
errors go through the application's own exception handlers, so an answer
cannot tell which way it came.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
_HANDLERS: dict[tuple[str, str], Handler] = {}


def direct_route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the direct answer to ``method path`` (an exact path)."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[(method, path)] = handler
        return handler

    return register


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
    """ASGI middleware: a registered exact path goes to its handler, the rest to FastAPI."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        routes = {
            (method, route.path): route
            for route in _declared_routes(fastapi.routes)
            for method in getattr(route, "methods", None) or ()
            if hasattr(route, "path")
        }
        # The FastAPI route is kept in the scope for the access log and metrics labels.
        self.table: dict[tuple[str, str], tuple[Handler, BaseRoute | None]] = {
            key: (handler, routes.get(key)) for key, handler in _HANDLERS.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = (
            self.table.get((scope["method"], _route_path(scope)))
            if scope["type"] == "http"
            else None
        )
        if entry is None:
            await self.app(scope, receive, send)
            return
        handler, route = entry
        scope["route"] = route
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as error:  # answered as FastAPI's handlers answer it
            response = await self._handled(request, error)
        await response(scope, receive, send)

    async def _handled(self, request: Request, error: Exception) -> Response:
        for kind in type(error).__mro__:
            handler = self.fastapi.exception_handlers.get(kind)
            # Unexpected errors go on to Starlette's ServerErrorMiddleware, which
            # logs them and answers with the application's 500 problem.
            if handler is not None and kind is not Exception:
                response = handler(request, error)
                return await response if inspect.isawaitable(response) else response
        raise error


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
