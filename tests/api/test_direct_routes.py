"""Direct routes (idp.http.direct) answer like the FastAPI routes they stand in for."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from api.helpers import living_person
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from idp.http.direct import DirectRoutes

BODY_PROBLEMS = [
    (b"{not json", 400, "malformed-json"),
    (b'{"national_code": "0012345679", "shoe_size": 42}', 422, "invalid-request"),
    (b'{"national_code": 12}', 422, "invalid-request"),
    (b"[]", 422, "invalid-request"),
    (b"", 422, "invalid-request"),
]


def test_the_busy_paths_are_in_the_direct_table(hoviyat_app: FastAPI) -> None:
    stack = hoviyat_app.build_middleware_stack()
    while not isinstance(stack, DirectRoutes):
        stack = stack.app  # type: ignore[attr-defined]
    assert {
        ("POST", "/token"),
        ("POST", "/ocsp"),
        ("POST", "/v1/persons/verify"),
        ("POST", "/v1/mobile/verify"),
        ("POST", "/v1/legal-entities/verify"),
    } <= set(stack.table)
    # Each keeps its FastAPI route for the metrics label and the OpenAPI document.
    assert all(route is not None for _, route in stack.table.values())


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


def test_the_token_is_checked_before_the_body(app_client: TestClient) -> None:
    answer = app_client.post(
        "/v1/persons/verify", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 401
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


def test_a_proxy_prefix_still_reaches_the_direct_route(
    hoviyat_app: FastAPI, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    body = json.dumps({"national_code": person["national_code"]}).encode()
    fell_through: list[str] = []

    async def fastapi_router(scope: Scope, receive: Receive, send: Send) -> None:
        fell_through.append(scope["path"])
        await PlainTextResponse("router", status_code=599)(scope, receive, send)

    async def call(path: str, root_path: str) -> int:
        messages: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            messages.append(message)

        scope = {
            "type": "http", "method": "POST", "path": path, "root_path": root_path,
            "query_string": b"", "app": hoviyat_app,
            "headers": [(b"authorization", f"Bearer {bank_token}".encode()),
                        (b"content-type", b"application/json")],
        }  # fmt: skip
        await DirectRoutes(fastapi_router, fastapi=hoviyat_app)(scope, receive, send)
        return int(messages[0]["status"])

    with TestClient(hoviyat_app):  # runs the app's lifespan around the calls
        assert asyncio.run(call("/hoviyat/v1/persons/verify", "/hoviyat")) == 200
        assert asyncio.run(call("/v1/persons/verify", "")) == 200
        assert asyncio.run(call("/hoviyat/v1/persons/verify", "")) == 599
    assert fell_through == ["/hoviyat/v1/persons/verify"]
