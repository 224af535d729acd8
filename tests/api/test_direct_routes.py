"""Direct routes (idp.http.direct) answer like the FastAPI routes they stand in for."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from api.helpers import living_person
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from idp.http.direct import DirectFastAPI, DirectRoute, DirectRoutes

# Run with the direct routes on and off (tests/api/conftest.py): the answers are the same.
BOTH_ROUTINGS = {
    "test_body_errors_are_the_problems_fastapi_would_give",
    "test_attack_unauthenticated_caller_probing_the_body_parser_gets_only_401",
    "test_direct_answers_are_counted_under_their_route",
}

BODY_PROBLEMS = [
    (b"{not json", 400, "malformed-json"),
    (b'{"national_code": "0012345679", "shoe_size": 42}', 422, "invalid-request"),
    (b'{"national_code": 12}', 422, "invalid-request"),
    (b"[]", 422, "invalid-request"),
    (b"", 422, "invalid-request"),
]


def test_the_busy_paths_are_in_the_direct_table(hoviyat_app: FastAPI) -> None:
    assert isinstance(hoviyat_app, DirectFastAPI)
    stack = hoviyat_app.direct
    assert stack is not None
    assert {
        ("POST", "/token"),
        ("GET", "/userinfo"),
        ("POST", "/userinfo"),
        ("POST", "/ocsp"),
        ("POST", "/v1/persons/verify"),
        ("POST", "/v1/mobile/verify"),
        ("POST", "/v1/legal-entities/verify"),
    } <= set(stack.table)
    # Each keeps its FastAPI route for the metrics label and the OpenAPI document.
    assert all(route is not None for _, route in stack.table.values())


@pytest.mark.parametrize("direct_routes", [False])
def test_the_switch_leaves_every_path_to_fastapis_router(
    hoviyat_app: FastAPI, direct_routes: bool
) -> None:
    # HOVIYAT_DIRECT_ROUTES=false: no table, so FastAPI's router answers everything.
    assert isinstance(hoviyat_app, DirectFastAPI)
    assert hoviyat_app.direct is None


def test_a_direct_route_needs_its_fastapi_route(hoviyat_app: FastAPI) -> None:
    async def handler(_request: Request) -> Response:
        return Response()

    orphan = DirectRoute("GET", "/nowhere", handler)
    with pytest.raises(LookupError, match="/nowhere"):
        DirectRoutes(hoviyat_app, [orphan], lambda inner: inner)


def test_body_errors_are_the_problems_fastapi_would_give(
    app_client: TestClient, bank_token: str
) -> None:
    headers = {"Authorization": f"Bearer {bank_token}", "Content-Type": "application/json"}
    for body, status, slug in BODY_PROBLEMS:
        answer = app_client.post("/v1/persons/verify", content=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith(slug)
    extra = app_client.post(
        "/v1/persons/verify", content=BODY_PROBLEMS[1][0], headers=headers
    ).json()
    assert extra["errors"][0]["location"] == "body.shoe_size"


VERIFY_PATHS = (
    "/v1/persons/verify",
    "/v1/mobile/verify",
    "/v1/legal-entities/verify",
    "/v1/legal-entities/10100000004/representatives/verify",
)


def test_attack_unauthenticated_caller_probing_the_body_parser_gets_only_401(
    app_client: TestClient, direct_routes: bool
) -> None:
    # Without a token, malformed or invalid bodies must not tell a 400 from a
    # 422 (the token is checked before the body is read, on either routing).
    for path in VERIFY_PATHS:
        for body, _status, _slug in BODY_PROBLEMS:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                answer = app_client.post(
                    path, content=body, headers={**headers, "Content-Type": "application/json"}
                )
                assert answer.status_code == 401, (direct_routes, path, body, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")


def test_direct_answers_are_counted_under_their_route(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    answer = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": person["birth_date"]},
        headers={"Authorization": f"Bearer {bank_token}"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    metrics = app_client.get("/metrics").text
    assert 'route="/v1/persons/verify",status="200"' in metrics


def _call(
    app: ASGIApp, method: str, path: str, root_path: str, headers: list, body: bytes = b""
) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http", "method": method, "path": path, "root_path": root_path,
        "query_string": b"", "headers": headers,
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return messages


def test_a_proxy_prefix_still_reaches_the_direct_route(
    hoviyat_app: FastAPI, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    body = json.dumps({"national_code": person["national_code"]}).encode()
    headers = [
        (b"authorization", f"Bearer {bank_token}".encode()),
        (b"content-type", b"application/json"),
    ]

    def status(path: str, root_path: str) -> int:
        return int(_call(hoviyat_app, "POST", path, root_path, headers, body)[0]["status"])

    with TestClient(hoviyat_app):  # runs the app's lifespan around the calls
        assert status("/hoviyat/v1/persons/verify", "/hoviyat") == 200
        assert status("/v1/persons/verify", "") == 200
        # Not a direct path once the prefix is not the root path: FastAPI's router says 404.
        assert status("/hoviyat/v1/persons/verify", "") == 404


def test_an_unexpected_error_is_the_applications_500_problem(hoviyat_app: FastAPI) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("a bug")

    assert isinstance(hoviyat_app, DirectFastAPI) and hoviyat_app.direct is not None
    hoviyat_app.direct.table[("GET", "/broken")] = (broken, None)
    start, body = _call(hoviyat_app, "GET", "/broken", "", [])
    assert start["status"] == 500
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert (b"x-content-type-options", b"nosniff") in start["headers"]
    assert json.loads(body["body"])["type"].endswith("internal-error")
