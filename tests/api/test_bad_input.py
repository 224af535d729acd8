"""Bad input gets the right 4xx problem, is recorded when a client is known, and never a 500."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from api.helpers import living_person
from fastapi.testclient import TestClient
from fixtures_app import client_token
from sqlmodel import select

from idp.oauth.rfc9068 import issue_access_token
from idp.storage.models import AuditEntry

PROBLEM = "application/problem+json"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["title"] and body["detail"]
    return body


def test_bad_checksum_names_the_rule(app_client: TestClient, bank_token: str) -> None:
    body = _problem(
        app_client.post(
            "/v1/persons/verify", json={"national_code": "0499370898"}, headers=_auth(bank_token)
        ),
        422,
        "invalid-identifier",
    )
    assert body["field"] == "national_code" and body["rule"] == "checksum"
    assert body["tracking_code"]


def test_malformed_json_oversized_and_wrong_type(app_client: TestClient, bank_token: str) -> None:
    headers = {**_auth(bank_token), "content-type": "application/json"}
    _problem(
        app_client.post("/v1/persons/verify", content=b"{nope", headers=headers),
        400,
        "malformed-json",
    )
    big = b'{"national_code": "' + b"1" * 2_000_000 + b'"}'
    _problem(
        app_client.post("/v1/persons/verify", content=big, headers=headers), 413, "body-too-large"
    )
    _problem(
        app_client.post(
            "/v1/persons/verify",
            content=b"national_code=1",
            headers={**_auth(bank_token), "content-type": "text/plain"},
        ),
        415,
        "unsupported-media-type",
    )
    _problem(
        app_client.post(
            "/v1/persons/verify", json={"national_code": 12, "x": 1}, headers=_auth(bank_token)
        ),
        422,
        "invalid-request",
    )


def test_missing_expired_and_foreign_tokens(app_client: TestClient) -> None:
    _problem(
        app_client.post("/v1/persons/verify", json={"national_code": "0499370899"}),
        401,
        "unauthorized",
    )
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    expired = issue_access_token(
        hoviyat.keyring,
        issuer=hoviyat.settings.issuer,
        client_id="demo-bank",
        subject="demo-bank",
        scope=["persons.verify"],
        lifetime=-60,
        extra_claims={"service_code": "demo-bank-kyc", "roles": []},
    )
    _problem(
        app_client.post(
            "/v1/persons/verify", json={"national_code": "0499370899"}, headers=_auth(expired)
        ),
        401,
        "unauthorized",
    )
    foreign = issue_access_token(
        hoviyat.keyring,
        issuer="https://elsewhere.example",
        client_id="demo-bank",
        subject="demo-bank",
        scope=["persons.verify"],
        lifetime=60,
        extra_claims={"service_code": "demo-bank-kyc", "roles": []},
    )
    _problem(
        app_client.post(
            "/v1/persons/verify", json={"national_code": "0499370899"}, headers=_auth(foreign)
        ),
        401,
        "unauthorized",
    )
    from joserfc import jwt
    from joserfc.jwk import ECKey

    stranger_key = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": stranger_key.kid},
        {
            "iss": hoviyat.settings.issuer,
            "aud": hoviyat.settings.issuer + "/v1",
            "exp": int(time.time()) + 60,
            "service_code": "demo-bank-kyc",
            "client_id": "x",
        },
        stranger_key,
    )
    _problem(
        app_client.post(
            "/v1/persons/verify", json={"national_code": "0499370899"}, headers=_auth(forged)
        ),
        401,
        "unauthorized",
    )


def test_operation_outside_policy_is_403_and_recorded(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    token = client_token(app_client, "demo-registry", demo_clients["demo-registry"])
    body = _problem(
        app_client.post(
            "/v1/legal-entities/verify", json={"national_id": "10380284790"}, headers=_auth(token)
        ),
        403,
        "operation-not-allowed",
    )
    assert body["service_code"] == "demo-match-only"
    assert body["operation"] == "legal_entities.verify"
    with app_client.app.state.hoviyat.db.read() as session:  # type: ignore[attr-defined]
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.tracking_code == body["tracking_code"])
        ).one()
    assert entry.outcome == "refused" and entry.detail == {"problem": "operation-not-allowed"}


def test_identifier_validation_endpoint(app_client: TestClient, bank_token: str) -> None:
    app_client.headers["Authorization"] = f"Bearer {bank_token}"
    ok = app_client.get(
        "/v1/identifiers/validate",
        params={"national_code": "۰۴۹۹۳۷۰۸۹۹", "national_id": "10380284790"},
    )
    assert ok.status_code == 200
    assert ok.json()["national_code"] == {
        "valid": True,
        "value": "0499370899",
        "rule": None,
        "message": None,
        "warnings": [],
    }
    bad = app_client.get("/v1/identifiers/validate", params={"national_code": "1111111111"})
    assert bad.json()["national_code"]["valid"] is False
    _problem(app_client.get("/v1/identifiers/validate"), 400, "missing-identifier")


def test_per_subject_rate_limit_answers_429(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    token = client_token(app_client, "demo-registry", demo_clients["demo-registry"])
    person = living_person(synthetic_registry_path)
    limit = app_client.app.state.hoviyat.policies["demo-match-only"].rate_limits  # type: ignore[attr-defined]
    payload = {"national_code": person["national_code"], "birth_date": "1999-01-01"}
    # A window may roll over once during the loop, so allow up to two windows' worth.
    for attempt in range(2 * limit.per_subject_per_minute + 2):
        response = app_client.post("/v1/persons/verify", json=payload, headers=_auth(token))
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
    else:
        pytest.fail(f"no 429 after {attempt + 1} calls for one subject")
    assert attempt >= limit.per_subject_per_minute
    _problem(response, 429, "rate-limited")
    assert int(response.headers["retry-after"]) >= 1


def test_unknown_path_is_a_problem(app_client: TestClient) -> None:
    _problem(app_client.get("/v1/nothing-here"), 404, "not-found")


def test_nul_bytes_are_a_400_never_a_500(app_client: TestClient, bank_token: str) -> None:
    _problem(
        app_client.get("/v1/identifiers/validate", params={"national_code": "\x00"}),
        400,
        "invalid-characters",
    )
    _problem(app_client.get("/authorize", params={"client_id": "\x00"}), 400, "invalid-characters")


def test_an_oversized_chunked_body_is_refused_as_it_streams(
    app_client: TestClient, bank_token: str
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"national_code": "'
        for _ in range(40):
            yield b"1" * 65_536  # 2.6 MB in all, with no Content-Length to check up front
        yield b'"}'

    headers = {**_auth(bank_token), "content-type": "application/json"}
    response = app_client.post("/v1/persons/verify", content=chunks(), headers=headers)
    _problem(response, 413, "body-too-large")
