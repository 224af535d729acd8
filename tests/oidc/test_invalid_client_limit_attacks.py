"""Attacks on the per-client limit of audited failed client authentications (RFC 6749 §5.2).

From the attacker's side, over HTTP through the real app (and across two
uvicorn workers on PostgreSQL): guessing a client's secret at every endpoint in
turn is cut off at one shared limit, and neither the audit log grows past it nor
the real client is locked out at any endpoint or worker; odd client ids (NUL,
control characters, non-UTF-8 Basic, an assertion whose ``sub`` is huge or not
text) are refused without a server error, and no credential lands in any log
record at any level.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select
from two_workers import TwoWorkers

from idp.oidc.rfc7523 import ASSERTION_TYPE
from idp.settings import Settings
from idp.storage.models import AuditEntry

CLIENT = "demo-bank"
ENDPOINTS = ("token", "par", "introspect", "revoke")


def _body(endpoint: str) -> dict[str, str]:
    if endpoint == "token":
        return {"grant_type": "client_credentials"}
    if endpoint == "par":
        return {"response_type": "code", "redirect_uri": "https://rp.example/cb"}
    return {"token": "t"}


def _entries(app: FastAPI) -> list[AuditEntry]:
    with app.state.hoviyat.db.read() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())


def _refusals(app: FastAPI, client_id: str) -> list[AuditEntry]:
    return [
        e
        for e in _entries(app)
        if e.event_type == "client_authentication" and e.actor_id == client_id
    ]


def test_attack_guessing_at_every_endpoint_in_turn_shares_one_limit_and_spares_the_client(
    hoviyat_app: FastAPI, app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    limiter = hoviyat_app.state.hoviyat.rate_limiter
    limit = hoviyat_app.state.hoviyat.settings.failed_client_authentications_per_window
    window = limiter.window()
    statuses = [
        app_client.post(
            f"/{endpoint}", data=_body(endpoint), auth=(CLIENT, f"guess-{n}")
        ).status_code
        for n, endpoint in zip(range(limit * 2), itertools.cycle(ENDPOINTS), strict=False)
    ]
    if limiter.window() != window:
        pytest.skip("the burst crossed a rate-limit window: its counts started again")
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}
    assert len(_refusals(hoviyat_app, CLIENT)) == limit
    # The real secret still works at every endpoint that needs no more than it.
    real = (CLIENT, demo_clients[CLIENT])
    assert app_client.post("/token", data=_body("token"), auth=real).status_code == 200
    assert app_client.post("/introspect", data={"token": "t"}, auth=real).status_code == 200
    assert app_client.post("/revoke", data={"token": "t"}, auth=real).status_code == 200
    pushed = app_client.post("/par", data=_body("par"), auth=real)
    assert pushed.status_code not in (401, 429), pushed.text
    assert len(_refusals(hoviyat_app, CLIENT)) == limit


def _basic(raw: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def _unsigned_assertion(sub: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part({'sub': sub, 'iss': sub})}.{part('sig')}"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_attack_odd_client_ids_are_refused_without_a_server_error_or_a_log_of_them(
    hoviyat_app: FastAPI, app_client: TestClient, caplog: pytest.LogCaptureFixture, endpoint: str
) -> None:
    caplog.set_level(logging.DEBUG)
    before = len(_entries(hoviyat_app))
    marker = "zq" + secrets.token_hex(6)
    url = f"/{endpoint}"
    body = _body(endpoint)
    answers = [
        app_client.post(url, data=body, headers=_basic(b"demo%00bank:" + marker.encode())),
        app_client.post(url, data=body, headers=_basic(b"\xff\xfe" + marker.encode() + b":x")),
        app_client.post(url, data=body, headers=_basic(b"demo-bank\x1b[2J:" + marker.encode())),
        app_client.post(url, data=body, headers={"authorization": "Basic %%%" + marker}),
        app_client.post(url, data={**body, "client_id": "demo\nbank", "client_secret": marker}),
        app_client.post(url, data={**body, "client_id": "demo\x00bank", "client_secret": marker}),
        app_client.post(
            url,
            data={
                **body,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _unsigned_assertion(marker * 2000),
            },
        ),
        app_client.post(
            url,
            data={
                **body,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _unsigned_assertion({"nested": [marker]}),
            },
        ),
        app_client.post(
            url,
            data={**body, "client_assertion_type": ASSERTION_TYPE, "client_assertion": marker},
        ),
    ]
    for answer in answers:
        assert answer.status_code in (400, 401), answer.text
        assert answer.json()  # a problem or an OAuth error, not a crash page
    assert len(_entries(hoviyat_app)) == before  # no registered client named: nothing written
    assert marker not in caplog.text


def test_attack_a_real_clients_id_with_a_garbage_assertion_keeps_the_assertion_out_of_logs(
    hoviyat_app: FastAPI, app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "zq" + secrets.token_hex(8)
    forged = _unsigned_assertion(CLIENT).rsplit(".", 1)[0] + "." + marker
    answers = [
        app_client.post(
            "/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": forged,
            },
        ),
        app_client.post("/token", data={"grant_type": "client_credentials"}, auth=(CLIENT, marker)),
    ]
    assert [a.status_code for a in answers] == [401, 401]
    refusals = _refusals(hoviyat_app, CLIENT)
    assert len(refusals) == 2
    for entry in refusals:
        assert marker not in json.dumps(entry.model_dump(mode="json"))
        assert len(entry.detail["reason"]) <= 200
    assert marker not in caplog.text
    for record in caplog.records:
        assert marker not in str(record.args) and marker not in str(record.exc_info)


@pytest.fixture
def workers(
    database_url: str, hoviyat_settings: Settings, hoviyat_app: FastAPI, tmp_path: Path
) -> Iterator[TwoWorkers]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the cross-process limit runs on PostgreSQL (SQLite serialises writers)")
    port = int(hoviyat_settings.issuer.rsplit(":", 1)[1])
    with TwoWorkers(hoviyat_settings, port, tmp_path / "uvicorn.log") as server:
        yield server


@pytest.mark.slow
def test_attack_guessing_across_two_workers_is_limited_and_the_client_is_never_locked_out(
    workers: TwoWorkers, hoviyat_app: FastAPI, demo_clients: dict[str, str]
) -> None:
    limiter = hoviyat_app.state.hoviyat.rate_limiter
    limit = hoviyat_app.state.hoviyat.settings.failed_client_authentications_per_window
    window = limiter.window()
    statuses = []
    real_statuses = []
    for n in range(limit * 3):
        # A fresh connection each time: the kernel spreads them over both workers.
        with httpx.Client(timeout=30) as client:
            statuses.append(
                client.post(
                    f"{workers.url}/token",
                    data={"grant_type": "client_credentials"},
                    auth=(CLIENT, f"guess-{n}"),
                ).status_code
            )
        if n % 10 == 9:
            with httpx.Client(timeout=30) as client:
                real_statuses.append(
                    client.post(
                        f"{workers.url}/token",
                        data={"grant_type": "client_credentials"},
                        auth=(CLIENT, demo_clients[CLIENT]),
                    ).status_code
                )
    if limiter.window() != window:
        pytest.skip("the burst crossed a rate-limit window: its counts started again")
    assert set(real_statuses) == {200}
    assert set(statuses) <= {401, 429} and statuses[-limit:] == [429] * limit
    # Each worker learns the others' counts with its own next commit: a bounded overshoot.
    assert limit <= len(_refusals(hoviyat_app, CLIENT)) <= limit + 2
