"""A registry server: the synthetic registry over HTTP, with switchable latency and failures.

It stands in for the real civil, mobile-ownership and deeds registries so the
HTTP adapter (:mod:`verifiers.registry.http_adapter`) is tested against a real
server on loopback, and so a deployment can run its registry as a separate
process (``hoviyat registry serve``).

HTTP contract (JSON bodies, UTF-8; dates ISO ``YYYY-MM-DD``; the record shapes
are those of :mod:`verifiers.registry.wire`). Identifiers travel in POST bodies,
never in URLs: request lines end up in access logs, proxy logs and client
debug logs, and a national code there undoes the hashed audit subjects. The
lookups change nothing, so a client may repeat them.

``POST /civil/persons/lookup`` ``{"national_code": ...}``
    200 with the person record, or 404 ``{"error": "not_found"}``.
``POST /mobile/owners/lookup`` ``{"mobile": ..., "national_code": ...}``
    200 ``{"mobile": ..., "national_code": ..., "owns": true|false}``.
``POST /deeds/entities/lookup`` ``{"national_id": ...}``
    200 with the entity record and its representatives, or 404
    ``{"error": "not_found"}``.
``POST /deeds/representatives/lookup`` ``{"national_code": ...}``
    200 ``{"national_ids": [...]}``: the entities that list the person as a
    representative (possibly none).
``GET /healthz``
    200 ``{"status": "ok", "persons": N, "entities": M}``.

A body that is not a JSON object with the named string members is a 400
``{"error": "bad_request"}``.
A 404 means "no such record" only with the body ``{"error": "not_found"}``:
any other 404 (a wrong base URL, a proxy's error page) is a broken contract,
and the adapter reports the registry unavailable rather than answer "no match".
A failure is any 5xx; it may carry ``Retry-After``.

Fault injection, for tests and demos (not part of the registry contract):

``GET /_control`` / ``POST /_control`` with any of
    ``{"latency_ms": 250, "error_rate": 0.5, "error_status": 503}``: every
    later request (except ``/_control``) first waits ``latency_ms``, then fails
    with ``error_status`` with probability ``error_rate``. Answers the state
    now in force, with ``requests``: how many registry requests were served.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from verifiers.registry.synthetic import SyntheticRegistry
from verifiers.registry.wire import entity_to_json, person_to_json

R = TypeVar("R")


@dataclass
class FaultInjection:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    requests: int = 0  # registry requests seen, so tests can count retries


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def create_registry_app(
    registry: SyntheticRegistry,
    *,
    latency_ms: float = 0,
    error_rate: float = 0.0,
    seed: int | None = None,
    control: bool = True,
) -> Starlette:
    """An ASGI app serving ``registry`` over the contract above.

    ``seed`` makes the injected failures reproducible; ``control=False``
    leaves out ``/_control`` so a long-running server cannot be told to fail.
    """
    faults = FaultInjection(latency_ms=latency_ms, error_rate=error_rate)
    chance = random.Random(seed)

    async def inject() -> Response | None:
        faults.requests += 1
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.error_rate > 0 and chance.random() < faults.error_rate:
            return _json(
                {"error": "injected_failure"},
                faults.error_status,
                {"Retry-After": "1"} if faults.error_status == 503 else None,
            )
        return None

    async def healthz(request: Request) -> Response:
        if failure := await inject():
            return failure
        meta = registry.meta
        return _json(
            {"status": "ok", "persons": int(meta["persons"]), "entities": int(meta["entities"])}
        )

    async def lookup(request: Request, *names: str) -> dict[str, str] | Response:
        """The request's identifiers, or the 400 that says which are missing."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(body.get(n), str) for n in names):
            detail = f"expected a JSON object with string members {', '.join(names)}"
            return _json({"error": "bad_request", "detail": detail}, 400)
        return {name: body[name] for name in names}

    def record_lookup(
        key: str, find: Callable[[str], R | None], to_json: Callable[[R], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A lookup by ``key``: the record as JSON, or 404 when the registry has none."""

        async def handler(request: Request) -> Response:
            if failure := await inject():
                return failure
            asked = await lookup(request, key)
            if isinstance(asked, Response):
                return asked
            record = find(asked[key])
            if record is None:
                return _json({"error": "not_found"}, 404)
            return _json(to_json(record))

        return handler

    civil_person = record_lookup("national_code", registry.person, person_to_json)
    deeds_entity = record_lookup("national_id", registry.entity, entity_to_json)

    async def mobile_owner(request: Request) -> Response:
        if failure := await inject():
            return failure
        asked = await lookup(request, "mobile", "national_code")
        if isinstance(asked, Response):
            return asked
        owns = registry.owns(asked["national_code"], asked["mobile"])
        return _json({**asked, "owns": owns})

    async def deeds_represented(request: Request) -> Response:
        if failure := await inject():
            return failure
        asked = await lookup(request, "national_code")
        if isinstance(asked, Response):
            return asked
        national_ids = registry.entities_represented_by(asked["national_code"])
        return _json({"national_ids": national_ids})

    async def control_state(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body())
                settable = {"latency_ms", "error_rate", "error_status"}
                if not isinstance(changes, dict) or set(changes) - settable:
                    raise ValueError("unknown keys")
                latency = float(changes.get("latency_ms", faults.latency_ms))
                rate = float(changes.get("error_rate", faults.error_rate))
                status = int(changes.get("error_status", faults.error_status))
                if latency < 0 or not 0 <= rate <= 1 or not 500 <= status <= 599:
                    raise ValueError("out of range")
            except (ValueError, TypeError):
                return _json(
                    {
                        "error": "bad_request",
                        "detail": "expected latency_ms >= 0, 0 <= error_rate <= 1, "
                        "500 <= error_status <= 599",
                    },
                    400,
                )
            faults.latency_ms, faults.error_rate, faults.error_status = latency, rate, status
        return _json(asdict(faults))

    routes = [
        Route("/healthz", healthz),
        Route("/civil/persons/lookup", civil_person, methods=["POST"]),
        Route("/mobile/owners/lookup", mobile_owner, methods=["POST"]),
        Route("/deeds/entities/lookup", deeds_entity, methods=["POST"]),
        Route("/deeds/representatives/lookup", deeds_represented, methods=["POST"]),
    ]
    if control:
        routes.append(Route("/_control", control_state, methods=["GET", "POST"]))
    app = Starlette(routes=routes)
    app.state.faults = faults
    return app
