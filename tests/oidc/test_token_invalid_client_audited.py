"""A failed client authentication (RFC 6749 §5.2 ``invalid_client``) is audited, safely.

From the attacker's side, over HTTP through the real app, on SQLite and PostgreSQL:
a wrong secret is audited as a refusal of that client and the secret is written
nowhere; an invented client id (10,000 characters) is refused without being
written to the audit log; a burst of wrong secrets is cut off by the rate
limiter before it reaches the log, while the real client still gets its token.
"""

from __future__ import annotations

import json
import logging
import secrets
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey
from oidc_support import register_rp
from sqlmodel import col, select

from idp.oidc.rfc7523 import ASSERTION_TYPE
from idp.storage.models import AuditEntry

CLIENT = "demo-bank"
CREDENTIALS = {"grant_type": "client_credentials"}


def _entries(app: FastAPI) -> list[AuditEntry]:
    with app.state.hoviyat.db.read() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())


def _refusals(app: FastAPI, client_id: str) -> list[AuditEntry]:
    return [
        e
        for e in _entries(app)
        if e.event_type == "client_authentication" and e.actor_id == client_id
    ]


def _row_text(entry: AuditEntry) -> str:
    return json.dumps(entry.model_dump(mode="json"), ensure_ascii=False)


def test_attack_wrong_secret_is_audited_as_refused_and_the_secret_is_written_nowhere(
    hoviyat_app: FastAPI, app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    guess = "guessed-" + secrets.token_urlsafe(24)
    caplog.set_level(logging.DEBUG)
    basic = app_client.post("/token", data=CREDENTIALS, auth=(CLIENT, guess))
    posted = app_client.post(
        "/token", data={**CREDENTIALS, "client_id": CLIENT, "client_secret": guess}
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    assert posted.status_code == 401 and posted.json()["error"] == "invalid_client"
    first, second = _refusals(hoviyat_app, CLIENT)
    for entry in (first, second):
        assert entry.actor_type == "client"
        assert entry.outcome == "refused"
        assert entry.operation == "token.client_authentication"
        assert entry.service_code is not None
        assert guess not in _row_text(entry)
    assert first.detail["method"] == "client_secret_basic"
    assert second.detail["method"] == "client_secret_post"
    assert all(guess not in _row_text(e) for e in _entries(hoviyat_app))
    assert guess not in caplog.text


def test_attack_unknown_client_id_of_10000_characters_is_refused_and_not_audited(
    hoviyat_app: FastAPI, app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An id no client has is not written: the append-only log is no free storage."""
    caplog.set_level(logging.DEBUG)
    invented = "x" * 10_000
    before = len(_entries(hoviyat_app))
    answers = [
        app_client.post("/token", data=CREDENTIALS, auth=(invented, "secret")),
        app_client.post(
            "/token", data={**CREDENTIALS, "client_id": invented, "client_secret": "secret"}
        ),
        app_client.post("/introspect", data={"token": "t"}, auth=(invented, "secret")),
        app_client.post("/token", data=CREDENTIALS, auth=("no-such-client", "secret")),
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_client"
    assert len(_entries(hoviyat_app)) == before
    assert "xxxxxxxxxx" not in caplog.text


def test_attack_burst_of_wrong_secrets_is_rate_limited_before_the_audit_log(
    hoviyat_app: FastAPI, app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    limiter = hoviyat_app.state.hoviyat.rate_limiter
    limit = hoviyat_app.state.hoviyat.settings.failed_client_authentications_per_window
    window = limiter.window()
    statuses = [
        app_client.post("/token", data=CREDENTIALS, auth=(CLIENT, f"wrong-{n}")).status_code
        for n in range(limit + 5)
    ]
    if limiter.window() != window:
        pytest.skip("the burst crossed a rate-limit window: its counts started again")
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}
    limited = app_client.post("/token", data=CREDENTIALS, auth=(CLIENT, "wrong-again"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert len(_refusals(hoviyat_app, CLIENT)) == limit
    # Someone guessing a client's secret does not lock the client itself out.
    real = app_client.post("/token", data=CREDENTIALS, auth=(CLIENT, demo_clients[CLIENT]))
    assert real.status_code == 200, real.text


def test_attack_bad_private_key_jwt_assertion_is_audited_without_the_assertion(
    hoviyat_app: FastAPI, app_client: TestClient
) -> None:
    registered = ECKey.generate_key("P-256", auto_kid=True)
    rp = register_rp(
        hoviyat_app,
        "rp-assertion-refused",
        auth_method="private_key_jwt",
        jwks={"keys": [registered.as_dict(private=False)]},
    )
    forged_with = ECKey.generate_key("P-256", auto_kid=True)
    now = int(time.time())
    claims = {
        "iss": rp.client_id,
        "sub": rp.client_id,
        "aud": hoviyat_app.state.hoviyat.settings.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = joserfc_jwt.encode(
        {"alg": "ES256", "kid": registered.kid}, claims, forged_with, algorithms=["ES256"]
    )
    answer = app_client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert answer.status_code == 401, answer.text
    (entry,) = _refusals(hoviyat_app, rp.client_id)
    assert entry.outcome == "refused" and entry.detail["method"] == "private_key_jwt"
    signature = assertion.rsplit(".", 1)[1]
    assert assertion not in _row_text(entry) and signature not in _row_text(entry)


@pytest.mark.parametrize("endpoint", ["introspect", "revoke"])
def test_attack_wrong_secret_at_introspection_and_revocation_is_audited(
    hoviyat_app: FastAPI, app_client: TestClient, endpoint: str
) -> None:
    guess = secrets.token_urlsafe(24)
    answer = app_client.post(f"/{endpoint}", data={"token": "t"}, auth=(CLIENT, guess))
    assert answer.status_code == 401, answer.text
    (entry,) = _refusals(hoviyat_app, CLIENT)
    assert entry.operation == f"{endpoint}.client_authentication"
    assert guess not in _row_text(entry)
