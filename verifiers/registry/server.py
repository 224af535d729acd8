"""A registry server: the synthetic registry over HTTP, with switchable latency and failures.

It stands in for the real civil, mobile-ownership and deeds registries so the
HTTP adapter (:mod:`verifiers.registry.http_adapter`) is tested against a real
server on loopback, and so a deployment can run its registry as a separate
process (``hoviyat registry serve``).

HTTP contract (JSON bodies, UTF-8; dates ISO ``YYYY-MM-DD``; the record shapes
are those of :mod:`verifiers.registry.wire`):

``GET /civil/persons/{national_code}``
    200 with the person record, or 404 ``{"error": "not_found"}``.
``GET /mobile/owners/{mobile}?national_code=NNNNNNNNNN``
    200 ``{"mobile": ..., "national_code": ..., "owns": true|false}``; 400
    ``{"error": "bad_request"}`` without ``national_code``.
``GET /deeds/entities/{national_id}``
    200 with the entity record and its representatives, or 404
    ``{"error": "not_found"}``.
``GET /deeds/representatives/{national_code}/entities``
    200 ``{"national_ids": [...]}``: the entities that list the person as a
    representative (possibly none).
``GET /healthz``
    200 ``{"status": "ok", "persons": N, "entities": M}``.

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
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from verifiers.registry.synthetic import SyntheticRegistry
from verifiers.registry.wire import entity_to_json, person_to_json


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

    async def civil_person(request: Request) -> Response:
        if failure := await inject():
            return failure
        person = registry.person(request.path_params["national_code"])
        if person is None:
            return _json({"error": "not_found"}, 404)
        return _json(person_to_json(person))

    async def mobile_owner(request: Request) -> Response:
        if failure := await inject():
            return failure
        national_code = request.query_params.get("national_code")
        mobile = request.path_params["mobile"]
        if not national_code:
            return _json({"error": "bad_request", "detail": "national_code is required"}, 400)
        owns = registry.owns(national_code, mobile)
        return _json({"mobile": mobile, "national_code": national_code, "owns": owns})

    async def deeds_entity(request: Request) -> Response:
        if failure := await inject():
            return failure
        entity = registry.entity(request.path_params["national_id"])
        if entity is None:
            return _json({"error": "not_found"}, 404)
        return _json(entity_to_json(entity))

    async def deeds_represented(request: Request) -> Response:
        if failure := await inject():
            return failure
        national_ids = registry.entities_represented_by(request.path_params["national_code"])
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
        Route("/civil/persons/{national_code}", civil_person),
        Route("/mobile/owners/{mobile}", mobile_owner),
        Route("/deeds/entities/{national_id}", deeds_entity),
        Route("/deeds/representatives/{national_code}/entities", deeds_represented),
    ]
    if control:
        routes.append(Route("/_control", control_state, methods=["GET", "POST"]))
    app = Starlette(routes=routes)
    app.state.faults = faults
    return app
