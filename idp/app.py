"""The FastAPI application: one front door for every Hoviyat user.

``create_app(settings)`` serves the features :mod:`idp.features` lists and the
settings switch on: their routers, their grants and client-authentication
methods at /token, their direct routes and their discovery members. Every part
is given the one Settings object. Errors leave as RFC 9457 problems (OAuth
endpoints: RFC 6749 §5.2).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from idp import features
from idp.acme import responses as acme_responses
from idp.console import routes as console_routes
from idp.context import Hoviyat, build_hoviyat
from idp.http.direct import DirectFastAPI, DirectRoutes
from idp.http.middleware import FrontDoor, RequestLimits
from idp.http.openapi import declared_routes
from idp.http.openapi import install as install_openapi
from idp.http.security_headers import SecurityHeaders
from idp.http.trusted_proxy import ForwardedBy, TrustedProxies
from idp.oauth.client_auth import ClientAuthentication
from idp.oauth.discovery import Discovery
from idp.oauth.errors import OAuthError
from idp.oauth.token_endpoint import TokenEndpoint
from idp.oidc import backchannel
from idp.problems import (
    PROBLEM_BASE,
    PROBLEM_MEDIA_TYPE,
    Problem,
    database_unavailable,
    is_too_deep,
    json_too_deep,
)
from idp.settings import Settings
from idp.storage.availability import DATABASE_UNAVAILABLE

log = logging.getLogger("hoviyat")


def create_app(settings: Settings, hoviyat: Hoviyat | None = None) -> FastAPI:
    hoviyat = hoviyat or build_hoviyat(settings)
    served = features.enabled(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Back-Channel Logout 1.0: queued logout tokens are POSTed by every worker.
        interval = hoviyat.settings.backchannel_delivery_seconds
        deliverer = backchannel.Deliverer(
            hoviyat.db, interval, allow_loopback=hoviyat.settings.outbound_allow_loopback
        )
        if interval > 0:
            deliverer.start()
        yield
        deliverer.stop()
        hoviyat.close()

    app = DirectFastAPI(
        lifespan=lifespan,
        title="Hoviyat",
        version="0.1.0",
        description="Identity verification and PKI for e-government (هویت)",
        docs_url="/docs",
        redoc_url=None,
        # Hoviyat exports its own Prometheus metrics and JSON logs; FastAPI's
        # OpenTelemetry layer would otherwise look up providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.hoviyat = hoviyat
    # X-Forwarded-* and the TLS client certificate, believed only from HOVIYAT_TRUSTED_PROXIES.
    app.front = ForwardedBy(TrustedProxies(settings.trusted_proxies))
    authentication = ClientAuthentication(features.client_auth_methods(served))
    app.state.client_authentication = authentication
    token_endpoint = TokenEndpoint(features.grants(served), authentication)
    app.state.token_endpoint = token_endpoint
    app.state.discovery = Discovery(
        token_endpoint.grant_types, authentication.names, features.contributors(served)
    )
    for feature in served:
        app.include_router(feature.router)
    console_routes.mount(app)  # /console: pages for the people who run Hoviyat (issue 15)
    _install_error_handlers(app)
    acme_responses.install(app)  # ACME problem documents under /acme/ (RFC 8555 §6.7)
    install_openapi(app)
    limits = RequestLimits(
        max_body_bytes=settings.max_body_bytes,
        path_limits={"/v1/reconciliations": hoviyat.reconciliation_settings.max_upload_bytes},
    )
    headers = SecurityHeaders(hsts=settings.issuer.startswith("https://"))
    app.add_middleware(
        FrontDoor, limits=limits, headers=headers, refusal_page=acme_responses.front_door_refusal
    )
    if settings.direct_routes:
        # The direct routes pass the same front door, around their own dispatch
        # instead of FastAPI's router (idp.http.direct).
        unexpected = app.exception_handlers[Exception]
        app.direct = DirectRoutes(
            app,
            features.direct_routes(served),
            lambda inner: FrontDoor(inner, limits, headers, unexpected=unexpected),
        )
    return app


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at ``path``, OPTIONS included."""
    methods = {"OPTIONS"}
    for route in declared_routes(app.routes):
        if route.path_regex.match(path):
            methods |= route.methods or set()
    return sorted(methods)


def _route_path(request: Request) -> str:
    """The path as routes match it: without the ``root_path`` a proxy mounted us at."""
    path: str = request.scope.get("path", "")
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    return Problem(status, slug, title, detail, **extra).response()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem_handler(request: Request, problem: Problem) -> JSONResponse:
        return problem.response(instance=request.url.path)

    @app.exception_handler(OAuthError)
    async def oauth_handler(_request: Request, error: OAuthError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "location": ".".join(str(part) for part in error.get("loc", ())),
                "message": error.get("msg", ""),
            }
            for error in exc.errors()
        ]
        malformed = any(error.get("type") == "json_invalid" for error in exc.errors())
        if any(is_too_deep(error) for error in exc.errors()):
            return json_too_deep().response()
        if malformed:
            return _problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
        first = errors[0] if errors else {"location": "body", "message": "invalid"}
        return _problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{first['location']}: {first['message']}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_handler(request: Request, exc: StarletteHTTPException) -> Response:
        if is_too_deep(exc.__cause__):  # FastAPI's json.loads ran out of stack
            return json_too_deep().response()
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route on the path;
            # RFC 9110 §10.2.1 wants every method the resource serves.
            headers["Allow"] = ", ".join(allowed_methods(app, _route_path(request)))
            if request.method == "OPTIONS":
                # RFC 9110 §9.3.7: the methods the resource serves, no body.
                return Response(status_code=204, headers=headers)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        response = _problem(exc.status_code, slug, str(exc.detail), str(exc.detail))
        for key, value in headers.items():
            response.headers[key] = value
        return response

    async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
        # Logged without the statement's parameters (hide_parameters) and
        # without a traceback: an outage is an operating state, not a bug.
        log.warning("database unavailable on %s: %s", request.url.path, type(error).__name__)
        detail = "the database cannot be reached or did not answer in time; try again shortly"
        return database_unavailable(detail).response(instance=request.url.path)

    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, store_unavailable)

    @app.exception_handler(DataError)
    async def data_error(_request: Request, _exc: DataError) -> JSONResponse:
        # The database refused a value the caller sent (a NUL byte, an
        # out-of-range number); the transaction was rolled back.
        return _problem(
            400,
            "invalid-characters",
            "Bad request",
            "a parameter holds a value that cannot be stored (for example a NUL byte)",
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(
            {
                "type": PROBLEM_BASE + "internal-error",
                "title": "Internal error",
                "status": 500,
                "detail": "an unexpected error occurred; it has been logged",
            },
            status_code=500,
            media_type=PROBLEM_MEDIA_TYPE,
        )
