"""The admin API of dynamic registration: initial access tokens and trusted statement issuers.

``/v1/clients/initial-tokens`` and ``/v1/clients/statement-issuers`` do what
``hoviyat clients initial-token`` and ``statement-issuer`` do: admins only,
problem JSON on bad input, audited, a token shown once and stored as a keyed
digest. The attacks: a non-admin client, a revoked token or issuer still used,
revoking a spent token, private key material as an issuer's key.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import col, select

from idp.oidc import rfc7591
from idp.storage.models import AuditEntry
from idp.storage.registrations import InitialAccessToken
from verifiers.registry.base import LegalEntity, Person

SERVICE = "demo-tax-portal"
ISSUER = "https://software.tax.example/statements"
METADATA = {"redirect_uris": ["https://portal.tax.example/cb"], "client_name": "Portal"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _entity(representative: tuple[Person, LegalEntity]) -> LegalEntity:
    return representative[1]


def _audit(app: FastAPI, event_type: str) -> list[AuditEntry]:
    with app.state.hoviyat.db.read() as session:
        return list(
            session.exec(select(AuditEntry).where(col(AuditEntry.event_type) == event_type))
        )


def test_an_initial_token_made_by_api_registers_one_client_and_is_listed_without_its_value(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    admin_token: str,
    representative: tuple[Person, LegalEntity],
) -> None:
    entity = _entity(representative)
    created = app_client.post(
        "/v1/clients/initial-tokens",
        json={"national_id": entity.national_id, "service_code": SERVICE, "expires_in": 600},
        headers=_auth(admin_token),
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    token, token_id = body["initial_access_token"], body["id"]
    assert body["status"] == "unused" and body["registration_endpoint"].endswith("/register")
    with hoviyat_app.state.hoviyat.db.read() as session:
        stored = [row.token_digest for row in session.exec(select(InitialAccessToken))]
    assert token not in "".join(stored)  # only the keyed digest is kept

    registered = app_client.post("/register", json=METADATA, headers=_auth(token))
    assert registered.status_code == 201, registered.text
    listed = app_client.get("/v1/clients/initial-tokens", headers=_auth(admin_token))
    assert listed.status_code == 200
    (row,) = [t for t in listed.json() if t["id"] == token_id]
    assert row["status"] == "used" and row["client_id"] == registered.json()["client_id"]
    assert token not in listed.text

    # A used token cannot be revoked (it registered its client already).
    spent = app_client.delete(f"/v1/clients/initial-tokens/{token_id}", headers=_auth(admin_token))
    assert spent.status_code == 409
    assert spent.headers["content-type"].startswith("application/problem+json")
    (entry,) = _audit(hoviyat_app, "dcr_initial_token")
    assert entry.operation == "create" and entry.actor_id == "demo-admin"
    assert entity.national_id not in str(entry.detail)


def test_attack_revoked_initial_token_registers_nothing(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    admin_token: str,
    representative: tuple[Person, LegalEntity],
) -> None:
    entity = _entity(representative)
    body = app_client.post(
        "/v1/clients/initial-tokens",
        json={"national_id": entity.national_id, "service_code": SERVICE},
        headers=_auth(admin_token),
    ).json()
    revoked = app_client.delete(
        f"/v1/clients/initial-tokens/{body['id']}", headers=_auth(admin_token)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    refused = app_client.post(
        "/register", json=METADATA, headers=_auth(body["initial_access_token"])
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    again = app_client.delete(
        f"/v1/clients/initial-tokens/{body['id']}", headers=_auth(admin_token)
    )
    assert again.status_code == 409
    assert [e.operation for e in _audit(hoviyat_app, "dcr_initial_token")] == ["create", "revoke"]
    for unknown in ("0" * 16, "nothex", body["id"][:8]):
        missing = app_client.delete(
            f"/v1/clients/initial-tokens/{unknown}", headers=_auth(admin_token)
        )
        assert missing.status_code == 404, unknown


def test_attack_non_admin_client_manages_registration_credentials(
    app_client: TestClient, bank_token: str, representative: tuple[Person, LegalEntity]
) -> None:
    entity = _entity(representative)
    request = {"national_id": entity.national_id, "service_code": SERVICE}
    for method, path, body in (
        ("POST", "/v1/clients/initial-tokens", request),
        ("GET", "/v1/clients/initial-tokens", None),
        ("DELETE", "/v1/clients/initial-tokens/0000000000000000", None),
        ("POST", "/v1/clients/statement-issuers", {**request, "issuer": ISSUER, "jwks": {}}),
        ("GET", "/v1/clients/statement-issuers", None),
        ("POST", "/v1/clients/statement-issuers/revoke", {"issuer": ISSUER}),
    ):
        for headers in ({}, _auth(bank_token)):
            answer = app_client.request(method, path, json=body, headers=headers)
            assert answer.status_code in (401, 403), (method, path, answer.text)
            assert "initial_access_token" not in answer.text


def test_initial_tokens_refuse_bad_input_with_problems(
    app_client: TestClient, admin_token: str, representative: tuple[Person, LegalEntity]
) -> None:
    entity = _entity(representative)
    for request in (
        {"national_id": "12345678901", "service_code": SERVICE},  # check digit
        {"national_id": entity.national_id, "service_code": "no-such-policy"},
        {"national_id": entity.national_id, "service_code": "demo-match-only"},  # no logins
        {"national_id": entity.national_id, "service_code": SERVICE, "expires_in": 5},
        {"national_id": entity.national_id, "service_code": SERVICE, "roles": ["admin"]},
    ):
        answer = app_client.post(
            "/v1/clients/initial-tokens", json=request, headers=_auth(admin_token)
        )
        assert answer.status_code == 422, (request, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "initial_access_token" not in answer.text
    listed = app_client.get("/v1/clients/initial-tokens", headers=_auth(admin_token)).json()
    assert listed == []


def _statement(key: ECKey, **extra: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **extra}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def test_a_statement_issuer_trusted_by_api_registers_clients_until_revoked(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    admin_token: str,
    representative: tuple[Person, LegalEntity],
) -> None:
    entity = _entity(representative)
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    request = {
        "issuer": ISSUER,
        "jwks": {"keys": [key.as_dict(private=False)]},
        "national_id": entity.national_id,
        "service_code": SERVICE,
    }
    added = app_client.post(
        "/v1/clients/statement-issuers", json=request, headers=_auth(admin_token)
    )
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "trusted" and added.json()["key_ids"] == ["k1"]
    twice = app_client.post(
        "/v1/clients/statement-issuers", json=request, headers=_auth(admin_token)
    )
    assert twice.status_code == 422

    registered = app_client.post(
        "/register", json={**METADATA, "software_statement": _statement(key)}
    )
    assert registered.status_code == 201, registered.text

    revoke = {"issuer": ISSUER}
    path = "/v1/clients/statement-issuers/revoke"
    assert app_client.post(path, json=revoke, headers=_auth(admin_token)).status_code == 200
    assert app_client.post(path, json=revoke, headers=_auth(admin_token)).status_code == 409
    unknown = {"issuer": "https://nobody.example"}
    assert app_client.post(path, json=unknown, headers=_auth(admin_token)).status_code == 404
    after = app_client.post("/register", json={**METADATA, "software_statement": _statement(key)})
    assert after.status_code == 400
    assert after.json()["error"] == "unapproved_software_statement"
    listed = app_client.get("/v1/clients/statement-issuers", headers=_auth(admin_token)).json()
    assert [(i["issuer"], i["status"]) for i in listed] == [(ISSUER, "revoked")]
    operations = [e.operation for e in _audit(hoviyat_app, "dcr_statement_issuer")]
    assert operations == ["add", "revoke"]


def test_attack_private_key_or_symmetric_key_as_an_issuers_key(
    app_client: TestClient, admin_token: str, representative: tuple[Person, LegalEntity]
) -> None:
    entity = _entity(representative)
    key = ECKey.generate_key("P-256")
    refused: list[dict[str, Any]] = [
        {"keys": [key.as_dict(private=True)]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]},
        {"keys": []},
    ]
    for jwks in refused:
        answer = app_client.post(
            "/v1/clients/statement-issuers",
            json={
                "issuer": ISSUER,
                "jwks": jwks,
                "national_id": entity.national_id,
                "service_code": SERVICE,
            },
            headers=_auth(admin_token),
        )
        assert answer.status_code == 422, (jwks, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert app_client.get("/v1/clients/statement-issuers", headers=_auth(admin_token)).json() == []


def test_the_cli_service_and_the_api_share_one_token_format(
    hoviyat_app: FastAPI, app_client: TestClient, admin_token: str
) -> None:
    # A token made by the CLI's service is listed by the API under the same public id.
    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.session() as session:
        _token, row = rfc7591.create_initial_token(
            session,
            hoviyat.secrets,
            national_id="10100000005",
            service_code=SERVICE,
            created_by="t",
        )
    listed = app_client.get("/v1/clients/initial-tokens", headers=_auth(admin_token)).json()
    assert [t["id"] for t in listed] == [rfc7591.token_id(row)]
    assert listed[0]["created_by"] == "t"
