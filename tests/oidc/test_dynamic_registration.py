"""Dynamic client registration (RFC 7591) and its management (RFC 7592), from both sides.

An administrator's initial access token registers one client for one legal
entity and service policy; the agency then logs people in with the client it
registered, and reads, updates and deletes it with its registration access
token. The attacks: no, unknown, expired and reused initial tokens (and two
registrations racing with one token on two connections), metadata the
validator refuses, a request that picks its own service policy, one client's
registration token used on another, and a deleted client asking for tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from authlib.jose import JsonWebKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oidc_support import RelyingParty, authorization_params, code_for, exchange, log_in, pkce_pair
from sqlmodel import col, select

from idp.app import create_app
from idp.oauth.errors import OAuthError
from idp.oidc import rfc7591
from idp.settings import Settings
from idp.storage import registrations
from idp.storage.engine import Database
from idp.storage.models import AuditEntry, Client
from idp.storage.registrations import InitialAccessToken, RegisteredClient
from verifiers.registry.base import LegalEntity, Person

SERVICE = "demo-tax-portal"
REDIRECT = "https://agency.example/callback"


def initial_token(app: FastAPI, entity: LegalEntity, service: str = SERVICE) -> str:
    hoviyat = app.state.hoviyat
    national_id = rfc7591.check_request(
        hoviyat.registries, hoviyat.policies, entity.national_id, service
    )
    with hoviyat.db.session() as session:
        token, _row = rfc7591.create_initial_token(
            session, hoviyat.secrets, national_id=national_id, service_code=service, created_by="t"
        )
    return token


def metadata(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_name": "Land registry portal",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    document.update(overrides)
    return document


def register(browser: TestClient, token: str | None, document: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return browser.post("/register", json=document, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_count(app: FastAPI) -> int:
    with app.state.hoviyat.db.read() as session:
        return len(list(session.exec(select(Client))))


def token_row(app: FastAPI, token: str) -> InitialAccessToken:
    hoviyat = app.state.hoviyat
    key = rfc7591.digest(hoviyat.secrets, rfc7591.INITIAL_TOKEN_PURPOSE, token)
    with hoviyat.db.read() as session:
        row = session.get(InitialAccessToken, key)
        assert row is not None
        return row


@pytest.fixture
def entity(representative: tuple[Person, LegalEntity]) -> LegalEntity:
    return representative[1]


def test_a_registered_client_logs_a_person_in(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity, citizen: Person
) -> None:
    discovery = asgi_browser.get("/.well-known/openid-configuration").json()
    assert discovery["registration_endpoint"] == hoviyat_app.state.hoviyat.settings.issuer + (
        "/register"
    )
    token = initial_token(hoviyat_app, entity)
    response = register(asgi_browser, token, metadata())
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    client_id = answer["client_id"]
    assert answer["client_secret"] and answer["registration_access_token"]
    assert answer["client_secret_expires_at"] == 0
    assert answer["registration_client_uri"].endswith(f"/register/{client_id}")
    assert answer["redirect_uris"] == [REDIRECT]
    assert answer["client_name"] == "Land registry portal"
    assert "service_code" not in answer and "roles" not in answer

    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.read() as session:
        client = session.get(Client, client_id)
        row = session.get(RegisteredClient, client_id)
        assert client is not None and row is not None
        assert client.service_code == SERVICE and client.roles == []
        assert row.national_id == entity.national_id
        # Only digests are stored.
        assert answer["registration_access_token"] not in (row.registration_token_digest or "")
        entries = list(
            session.exec(
                select(AuditEntry).where(col(AuditEntry.event_type) == "client_registration")
            )
        )
    assert [e.operation for e in entries] == ["register"]
    assert entity.national_id not in json.dumps(entries[0].detail)
    assert token_row(hoviyat_app, token).client_id == client_id

    rp = RelyingParty(client_id, answer["client_secret"], REDIRECT)
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    tokens = exchange(asgi_browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]


def test_attack_register_without_an_initial_token(
    hoviyat_app: FastAPI, asgi_browser: TestClient
) -> None:
    before = client_count(hoviyat_app)
    for headers in ({}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer "}):
        response = asgi_browser.post("/register", json=metadata(), headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client_count(hoviyat_app) == before


def test_attack_register_with_an_unknown_initial_token(
    hoviyat_app: FastAPI, asgi_browser: TestClient
) -> None:
    before = client_count(hoviyat_app)
    response = register(asgi_browser, "made-up-token", metadata())
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert client_count(hoviyat_app) == before


def test_attack_register_with_an_expired_initial_token(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    token = initial_token(hoviyat_app, entity)
    row = token_row(hoviyat_app, token)
    with hoviyat_app.state.hoviyat.db.session() as session:
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    before = client_count(hoviyat_app)
    response = register(asgi_browser, token, metadata())
    assert response.status_code == 401
    assert client_count(hoviyat_app) == before
    assert token_row(hoviyat_app, token).used_at is None


def test_attack_reuse_an_initial_token(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    token = initial_token(hoviyat_app, entity)
    assert register(asgi_browser, token, metadata()).status_code == 201
    before = client_count(hoviyat_app)
    again = register(asgi_browser, token, metadata(client_name="Second"))
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_token"
    assert client_count(hoviyat_app) == before


def test_attack_race_two_registrations_with_one_token(
    hoviyat_app: FastAPI, database_url: str, entity: LegalEntity
) -> None:
    """Two connections (as two workers would hold) spend one token: exactly one gets it."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the race across connections needs PostgreSQL's row locks")
    token = initial_token(hoviyat_app, entity)
    key = rfc7591.digest(hoviyat_app.state.hoviyat.secrets, rfc7591.INITIAL_TOKEN_PURPOSE, token)
    first_db, second_db = Database(database_url), Database(database_url)
    results: list[object] = []
    try:
        with first_db.session() as first:
            now = datetime.now(UTC)
            results.append(registrations.consume(first, key, now))
            # The second blocks on the row lock until the first commits, then finds it spent.
            other = threading.Thread(
                target=lambda: results.append(_consume_in(second_db, key, now))
            )
            other.start()
        other.join()
    finally:
        first_db.dispose()
        second_db.dispose()
    assert results[0] is not None
    assert results[1] is None


def test_attack_race_two_workers_registering_with_one_token(
    hoviyat_app: FastAPI, hoviyat_settings: Settings, database_url: str, entity: LegalEntity
) -> None:
    """Two apps (two workers' engines and writers) get the same token at once: one 201."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two workers over one database are tested on PostgreSQL")
    token = initial_token(hoviyat_app, entity)
    other_app = create_app(hoviyat_settings)
    issuer = hoviyat_settings.issuer
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    try:
        with (
            TestClient(hoviyat_app, base_url=issuer) as one,
            TestClient(other_app, base_url=issuer) as two,
        ):

            def attempt(browser: TestClient) -> None:
                barrier.wait()
                statuses.append(register(browser, token, metadata()).status_code)

            threads = [threading.Thread(target=attempt, args=(b,)) for b in (one, two)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        other_app.state.hoviyat.close()
    assert sorted(statuses) == [201, 401]
    with hoviyat_app.state.hoviyat.db.read() as session:
        assert len(list(session.exec(select(RegisteredClient)))) == 1


def _consume_in(database: Database, key: str, now: datetime) -> object:
    with database.session() as session:
        return registrations.consume(session, key, now)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (metadata(redirect_uris=["http://agency.example/cb"]), "invalid_redirect_uri"),
        (metadata(redirect_uris=["https://agency.example/cb#frag"]), "invalid_redirect_uri"),
        (metadata(redirect_uris=[]), "invalid_redirect_uri"),
        (metadata(grant_types=["password"]), "invalid_client_metadata"),
        (metadata(token_endpoint_auth_method="client_secret_jwt"), "invalid_client_metadata"),
        (metadata(redirect_uris="https://agency.example/cb"), "invalid_client_metadata"),
        (metadata(service_code="demo-bank-kyc"), "invalid_client_metadata"),
        (metadata(roles=["admin"]), "invalid_client_metadata"),
        (metadata(software_statement="e30.e30."), "invalid_software_statement"),
        (
            metadata(profile="fapi2", token_endpoint_auth_method="client_secret_basic"),
            "invalid_client_metadata",
        ),
    ],
)
def test_attack_metadata_the_validator_refuses(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    entity: LegalEntity,
    document: dict[str, Any],
    error: str,
) -> None:
    token = initial_token(hoviyat_app, entity)
    before = client_count(hoviyat_app)
    response = register(asgi_browser, token, document)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    # Nothing changed: no client, and the token is still good for a proper registration.
    assert client_count(hoviyat_app) == before
    assert token_row(hoviyat_app, token).used_at is None
    assert register(asgi_browser, token, metadata()).status_code == 201


def test_attack_private_key_in_jwks(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    token = initial_token(hoviyat_app, entity)
    document = metadata(
        token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key.as_dict(is_private=True)]}
    )
    response = register(asgi_browser, token, document)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert "private key" in response.json()["error_description"]
    public = metadata(token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key.as_dict()]})
    created = register(asgi_browser, token, public)
    assert created.status_code == 201, created.text
    assert "client_secret" not in created.json()
    assert "d" not in created.json()["jwks"]["keys"][0]


def test_attack_body_that_is_not_a_json_object(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    token = initial_token(hoviyat_app, entity)
    for body in (b"[]", b"not json", b"\xff\xfe", b"null"):
        response = asgi_browser.post(
            "/register",
            content=body,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_client_metadata"
    assert token_row(hoviyat_app, token).used_at is None


def test_the_service_policy_is_the_tokens(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    token = initial_token(hoviyat_app, entity, service="demo-bank-kyc")
    answer = register(asgi_browser, token, metadata()).json()
    with hoviyat_app.state.hoviyat.db.read() as session:
        client = session.get(Client, answer["client_id"])
        assert client is not None
        assert client.service_code == "demo-bank-kyc"


def test_initial_tokens_only_for_valid_entities_and_login_policies(
    hoviyat_app: FastAPI, entity: LegalEntity
) -> None:
    hoviyat = hoviyat_app.state.hoviyat
    for national_id, service in (
        ("12345678901", SERVICE),  # bad check digit
        (entity.national_id, "demo-match-only"),  # does not allow oidc.login
        (entity.national_id, "no-such-service"),
    ):
        with pytest.raises(rfc7591.InitialTokenError):
            rfc7591.check_request(hoviyat.registries, hoviyat.policies, national_id, service)
    with hoviyat.db.session() as session, pytest.raises(rfc7591.InitialTokenError):
        rfc7591.create_initial_token(
            session,
            hoviyat.secrets,
            national_id=entity.national_id,
            service_code=SERVICE,
            created_by="t",
            expires_in=10**9,
        )


def test_the_cli_prints_an_initial_token_once_that_registers_a_client(
    hoviyat_app: FastAPI,
    hoviyat_settings: Settings,
    asgi_browser: TestClient,
    entity: LegalEntity,
) -> None:
    """``hoviyat clients initial-token create`` as an administrator runs it: a real process."""
    env = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(hoviyat_settings.data_dir),
        "HOVIYAT_DATABASE_URL": hoviyat_settings.database_url or "",
        "HOVIYAT_REGISTRY_PATH": str(hoviyat_settings.registry_path),
    }
    command = [sys.executable, "-m", "idp.cli", "clients", "initial-token", "create"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    created = run("--national-id", entity.national_id, "--service", SERVICE, "--json")
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    assert entity.national_id not in created.stdout + created.stderr
    registered = register(asgi_browser, answer["initial_access_token"], metadata())
    assert registered.status_code == 201, registered.text
    with hoviyat_app.state.hoviyat.db.read() as session:
        row = session.get(RegisteredClient, registered.json()["client_id"])
        assert row is not None and row.national_id == entity.national_id
        events = list(
            session.exec(
                select(AuditEntry).where(col(AuditEntry.event_type) == "dcr_initial_token")
            )
        )
    assert len(events) == 1
    refused = run("--national-id", entity.national_id, "--service", "demo-match-only", "--json")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "oidc.login" in refused.stderr

    # list shows tokens by id, never their value; revoke withdraws an unused one.
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command[:-1], *args], env=env, capture_output=True, text=True, timeout=120
        )

    second = json.loads(
        run("--national-id", entity.national_id, "--service", SERVICE, "--json").stdout
    )
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    states = {t["id"]: t["status"] for t in json.loads(listed.stdout)}
    assert states == {answer["id"]: "used", second["id"]: "unused"}
    assert second["initial_access_token"] not in listed.stdout
    assert cli("revoke", answer["id"]).returncode != 0  # used: nothing to withdraw
    revoked = cli("revoke", second["id"], "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["status"] == "revoked"
    late = register(asgi_browser, second["initial_access_token"], metadata())
    assert late.status_code == 401


def test_read_and_update_rotate_the_registration_token(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    answer = register(asgi_browser, initial_token(hoviyat_app, entity), metadata()).json()
    client_id, first = answer["client_id"], answer["registration_access_token"]
    path = f"/register/{client_id}"

    read = asgi_browser.get(path, headers=bearer(first))
    assert read.status_code == 200, read.text
    assert read.json()["redirect_uris"] == [REDIRECT]
    assert "client_secret" not in read.json()
    second = read.json()["registration_access_token"]
    assert second != first
    # The old token is spent.
    assert asgi_browser.get(path, headers=bearer(first)).status_code == 401

    refused = asgi_browser.put(
        path,
        json=metadata(client_id=client_id, redirect_uris=["http://agency.example/x"]),
        headers=bearer(second),
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_redirect_uri"
    wrong_id = asgi_browser.put(path, json=metadata(client_id="hv-other"), headers=bearer(second))
    assert wrong_id.status_code == 400

    new_uri = "https://agency.example/new-callback"
    updated = asgi_browser.put(
        path,
        json=metadata(client_id=client_id, redirect_uris=[new_uri], client_name="Renamed"),
        headers=bearer(second),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["redirect_uris"] == [new_uri]
    assert updated.json()["client_name"] == "Renamed"
    with hoviyat_app.state.hoviyat.db.read() as session:
        client = session.get(Client, client_id)
        assert client is not None
        assert client.redirect_uris == [new_uri]
        assert client.service_code == SERVICE
        operations = [
            e.operation
            for e in session.exec(
                select(AuditEntry).where(col(AuditEntry.event_type) == "client_registration")
            )
        ]
    assert operations == ["register", "update"]


def test_attack_registration_token_of_one_client_used_on_another(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    a = register(asgi_browser, initial_token(hoviyat_app, entity), metadata()).json()
    b = register(asgi_browser, initial_token(hoviyat_app, entity), metadata()).json()
    path_b = f"/register/{b['client_id']}"
    token_a = a["registration_access_token"]
    assert asgi_browser.get(path_b, headers=bearer(token_a)).status_code == 401
    hijack = metadata(client_id=b["client_id"], redirect_uris=["https://attacker.example/cb"])
    assert asgi_browser.put(path_b, json=hijack, headers=bearer(token_a)).status_code == 401
    assert asgi_browser.delete(path_b, headers=bearer(token_a)).status_code == 401
    assert asgi_browser.get("/register/hv-nobody", headers=bearer(token_a)).status_code == 401
    with hoviyat_app.state.hoviyat.db.read() as session:
        client = session.get(Client, b["client_id"])
        assert client is not None
        assert client.redirect_uris == [REDIRECT] and not client.disabled
    # B's own token still works: nothing was spent by the attempts.
    own = asgi_browser.get(path_b, headers=bearer(b["registration_access_token"]))
    assert own.status_code == 200


def test_attack_deleted_client_gets_no_tokens(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity, citizen: Person
) -> None:
    hoviyat = hoviyat_app.state.hoviyat
    answer = register(asgi_browser, initial_token(hoviyat_app, entity), metadata()).json()
    rp = RelyingParty(answer["client_id"], answer["client_secret"], REDIRECT)
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)

    path = f"/register/{rp.client_id}"
    token = answer["registration_access_token"]
    deleted = asgi_browser.delete(path, headers=bearer(token))
    assert deleted.status_code == 204
    refused = exchange(asgi_browser, rp, code, verifier)
    assert refused.status_code in (400, 401), refused.text
    assert "access_token" not in refused.json()
    assert asgi_browser.get(path, headers=bearer(token)).status_code == 401
    assert asgi_browser.delete(path, headers=bearer(token)).status_code == 401


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        ["redirect_uris", "grant_types", "jwks", "client_name", "profile", "x"]
                    )
                    | st.text(max_size=10),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_metadata_parser_refuses_with_an_oauth_error_or_parses(body: bytes) -> None:
    try:
        meta, _document = rfc7591.parse_metadata(body)
    except OAuthError as error:
        assert error.status == 400
        return
    try:
        rfc7591.attributes(meta, allow_http_loopback_sector=False)
    except OAuthError as error:
        assert error.error in ("invalid_redirect_uri", "invalid_client_metadata")
