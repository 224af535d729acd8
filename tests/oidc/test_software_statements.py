"""Dynamic registration by software statement (RFC 7591 §2.3, §3.1.1), from the attacker's side.

An administrator trusts an issuer: its public keys, bound to one legal entity
and one service policy. A statement it signs registers one client, without an
initial access token, tied to that entity and policy. The attacks: a statement
signed by a key the administrator never trusted, unsigned (``alg: none``) or
"signed" with the issuer's public key as an HMAC secret, stale, replayed
(also by racing connections), claiming another entity or policy, or asking
for metadata the policy forbids; and an issuer the administrator revoked.
Each refusal is an RFC 7591 §3.2.2 error and leaves no client behind.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlmodel import col, select

from idp.app import create_app
from idp.clients import sync_policies
from idp.oauth.errors import OAuthError
from idp.oidc import rfc7591, software_statement, statement_issuers
from idp.settings import Settings
from idp.storage import statement_issuers as issuer_store
from idp.storage.engine import Database
from idp.storage.models import AuditEntry, Client
from idp.storage.registrations import RegisteredClient
from idp.storage.statement_issuers import SpentStatement
from verifiers.registry.base import LegalEntity, Person

SERVICE = "demo-tax-portal"
ISSUER = "https://software.tax.example/statements"
REDIRECT = "https://portal.tax.example/callback"
Key = ECKey | RSAKey | OKPKey


def _public(key: Key) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def new_key(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters={"kid": uuid.uuid4().hex})
    if alg == "PS256":
        return RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex})
    return OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex})


def trust(
    app: FastAPI,
    entity: LegalEntity,
    key: Key,
    issuer: str = ISSUER,
    service: str = SERVICE,
) -> None:
    """What ``hoviyat clients statement-issuer add`` does."""
    hoviyat = app.state.hoviyat
    national_id = rfc7591.check_request(
        hoviyat.registries, hoviyat.policies, entity.national_id, service
    )
    with hoviyat.db.session() as session:
        statement_issuers.add(
            session,
            issuer=issuer,
            jwks={"keys": [_public(key)]},
            national_id=national_id,
            service_code=service,
            created_by="test",
        )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    document: dict[str, Any] = {
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "software_id": "tax-portal",
        "client_name": "Tax portal (by statement)",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    document.update(overrides)
    return {name: value for name, value in document.items() if value is not None}


def sign(key: Key, document: dict[str, Any], alg: str = "ES256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, document, key, algorithms=[alg])


def register(browser: TestClient, statement: str, **request: Any) -> Any:
    return browser.post("/register", json={"software_statement": statement, **request})


def client_count(app: FastAPI) -> int:
    with app.state.hoviyat.db.read() as session:
        return len(list(session.exec(select(Client))))


def refused(app: FastAPI, browser: TestClient, statement: str, error: str, **request: Any) -> None:
    before = client_count(app)
    response = register(browser, statement, **request)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error, response.text
    assert client_count(app) == before


@pytest.fixture
def entity(representative: tuple[Person, LegalEntity]) -> LegalEntity:
    return representative[1]


@pytest.fixture
def key(hoviyat_app: FastAPI, entity: LegalEntity) -> ECKey:
    trusted = new_key("ES256")
    assert isinstance(trusted, ECKey)
    trust(hoviyat_app, entity, trusted)
    return trusted


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA", "Ed25519"])
def test_a_statement_registers_a_client_tied_to_its_issuers_entity_and_policy(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity, alg: str
) -> None:
    signer = new_key(alg)
    trust(hoviyat_app, entity, signer)
    statement = sign(signer, claims(), alg)
    # §3.1.1: the statement's members win; the request's own are used where it is silent.
    response = register(
        asgi_browser,
        statement,
        redirect_uris=["https://elsewhere.example/cb"],
        client_name="Chosen by the request",
        post_logout_redirect_uris=["https://portal.tax.example/bye"],
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["redirect_uris"] == [REDIRECT]
    assert answer["client_name"] == "Tax portal (by statement)"
    assert answer["post_logout_redirect_uris"] == ["https://portal.tax.example/bye"]
    assert answer["client_secret"] and answer["registration_access_token"]
    client_id = answer["client_id"]
    with hoviyat_app.state.hoviyat.db.read() as session:
        client = session.get(Client, client_id)
        row = session.get(RegisteredClient, client_id)
        assert client is not None and row is not None
        assert client.service_code == SERVICE and client.roles == []
        assert row.national_id == entity.national_id
        (entry,) = session.exec(
            select(AuditEntry).where(col(AuditEntry.event_type) == "client_registration")
        )
    assert entry.detail["software_statement_issuer"] == ISSUER
    assert entity.national_id not in json.dumps(entry.detail)
    # The client it registered can be read with its registration token (RFC 7592).
    read = asgi_browser.get(
        answer["registration_client_uri"].removeprefix(hoviyat_app.state.hoviyat.settings.issuer),
        headers={"Authorization": f"Bearer {answer['registration_access_token']}"},
    )
    assert read.status_code == 200, read.text


def test_attack_statement_signed_by_untrusted_key(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    stranger = new_key("ES256")
    # The trusted issuer's name, another key (with the trusted key's kid, too).
    forged = jwt.encode({"alg": "ES256", "kid": key.kid}, claims(), stranger, algorithms=["ES256"])
    refused(hoviyat_app, asgi_browser, forged, "invalid_software_statement")
    # An issuer no administrator trusted: not approved here, whatever its signature.
    unknown = sign(stranger, claims(iss="https://unknown.example"))
    refused(hoviyat_app, asgi_browser, unknown, "unapproved_software_statement")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_attack_statement_alg_none(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    payload = _b64(json.dumps(claims()).encode())
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "kid": key.kid}).encode())
        refused(hoviyat_app, asgi_browser, f"{header}.{payload}.", "invalid_software_statement")
    # The issuer's public key used as an HMAC secret (key confusion).
    secret = OctKey.import_key(json.dumps(_public(key)).encode())
    hmac_signed = jwt.encode({"alg": "HS256"}, claims(), secret, algorithms=["HS256"])
    refused(hoviyat_app, asgi_browser, hmac_signed, "invalid_software_statement")


def test_attack_statement_expired(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    now = int(time.time())
    stale = [
        claims(iat=now - 7200, exp=now - 3600),  # expired an hour ago
        claims(iat=now + 3600, exp=now + 4200),  # issued in the future
        claims(iat=now, exp=now + 30 * 86_400),  # a month's lifetime
        claims(exp=None),  # no expiry at all
        claims(iat=None),
        claims(exp="tomorrow"),
        claims(nbf=now + 3600),
    ]
    for document in stale:
        refused(hoviyat_app, asgi_browser, sign(key, document), "invalid_software_statement")


def test_attack_statement_replayed_jti(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    statement = sign(key, claims())
    assert register(asgi_browser, statement).status_code == 201
    refused(hoviyat_app, asgi_browser, statement, "invalid_software_statement")
    # Another statement with the same jti (re-signed, new iat) is the same statement.
    document = claims()
    assert register(asgi_browser, sign(key, document)).status_code == 201
    resigned = {**document, "iat": document["iat"] - 1}
    refused(hoviyat_app, asgi_browser, sign(key, resigned), "invalid_software_statement")
    refused(hoviyat_app, asgi_browser, sign(key, claims(jti=None)), "invalid_software_statement")


def test_attack_replayed_jti_racing_on_many_connections(
    hoviyat_app: FastAPI, database_url: str
) -> None:
    """Workers and hosts each hold their own connections: one INSERT lets exactly one in."""
    statement_id = uuid.uuid4().hex
    expires = datetime.now(UTC) + timedelta(minutes=10)
    databases = [Database(database_url) for _ in range(6)]
    start = threading.Barrier(len(databases))
    outcomes: list[bool] = []

    def spend(db: Database) -> None:
        start.wait()
        with db.session() as session:
            outcomes.append(issuer_store.spend(session, statement_id, expires))

    threads = [threading.Thread(target=spend, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for db in databases:
        db.dispose()
    assert sorted(outcomes) == [False] * 5 + [True]


def test_attack_statement_claims_another_entity_or_policy(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    key: ECKey,
    entity: LegalEntity,
    registry: Any,
) -> None:
    other = next(
        e.national_id
        for e in registry.iter_entities(300)
        if e.national_id != entity.national_id and e.status == "active"
    )
    for document in (
        claims(service_code="demo-bank-kyc"),
        claims(national_id=other),
        claims(roles=["admin"]),
    ):
        refused(hoviyat_app, asgi_browser, sign(key, document), "unapproved_software_statement")
    # Repeating the issuer's own binding is no claim to anything else.
    same = claims(service_code=SERVICE, national_id=entity.national_id)
    assert register(asgi_browser, sign(key, same)).status_code == 201
    # The request cannot name them either, beside a valid statement.
    refused(
        hoviyat_app,
        asgi_browser,
        sign(key, claims()),
        "invalid_client_metadata",
        service_code="demo-bank-kyc",
    )
    # With an initial access token for another policy too: the two must agree, and the
    # token is not spent by the refusal.
    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.session() as session:
        token, row = rfc7591.create_initial_token(
            session,
            hoviyat.secrets,
            national_id=entity.national_id,
            service_code="demo-bank-kyc",
            created_by="t",
        )
    before = client_count(hoviyat_app)
    mixed = asgi_browser.post(
        "/register",
        json={"software_statement": sign(key, claims())},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert mixed.status_code == 400 and mixed.json()["error"] == "unapproved_software_statement"
    assert client_count(hoviyat_app) == before
    with hoviyat.db.read() as session:
        assert session.get(type(row), row.token_digest).used_at is None  # type: ignore[union-attr]


def test_attack_statement_from_a_revoked_issuer(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    with hoviyat_app.state.hoviyat.db.session() as session:
        statement_issuers.revoke(session, ISSUER)
    refused(hoviyat_app, asgi_browser, sign(key, claims()), "unapproved_software_statement")


LOGIN_ONLY = """
service_code = "demo-login-only"
title_fa = "ورود (نمونه)"
title_en = "Login only (demo)"
legal_basis = "test"
type = "enterprise"
operations = ["oidc.login"]
"""


@pytest.fixture
def login_only_app(
    hoviyat_settings: Settings, init_report: dict[str, Any], tmp_path: Path
) -> Iterator[FastAPI]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "login-only.toml").write_text(LOGIN_ONLY)
    app = create_app(hoviyat_settings.model_copy(update={"policies_dir": policies}))
    with app.state.hoviyat.db.session() as session:
        sync_policies(session, app.state.hoviyat.policies)  # as 'hoviyat init' stores them
    yield app
    app.state.hoviyat.close()


def test_attack_metadata_forbidden_by_policy(login_only_app: FastAPI, entity: LegalEntity) -> None:
    signer = new_key("ES256")
    trust(login_only_app, entity, signer, service="demo-login-only")
    issuer = login_only_app.state.hoviyat.settings.issuer
    with TestClient(login_only_app, base_url=issuer) as browser:
        # A back-office grant under a policy with no back-office operation.
        forbidden = claims(grant_types=["client_credentials"], redirect_uris=None)
        refused(login_only_app, browser, sign(signer, forbidden), "invalid_client_metadata")
        # Asked in the request where the statement is silent: still the policy's call.
        silent = claims(grant_types=None, redirect_uris=None)
        refused(
            login_only_app,
            browser,
            sign(signer, silent),
            "invalid_client_metadata",
            grant_types=["client_credentials"],
        )
        # What the policy allows registers.
        allowed = register(browser, sign(signer, claims()))
        assert allowed.status_code == 201, allowed.text


def test_attack_statement_that_is_not_a_jws(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    for value in ("", "e30.e30.", "not a jws", "a.b.c.d.e", 42, None, ["x"], "x" * 20_000):
        refused(hoviyat_app, asgi_browser, value, "invalid_software_statement")  # type: ignore[arg-type]


def test_the_cli_trusts_an_issuer_whose_statement_then_registers_until_revoked(
    hoviyat_app: FastAPI,
    hoviyat_settings: Settings,
    asgi_browser: TestClient,
    entity: LegalEntity,
    tmp_path: Path,
) -> None:
    """``hoviyat clients statement-issuer add/list/revoke`` as an administrator runs them."""
    env = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(hoviyat_settings.data_dir),
        "HOVIYAT_DATABASE_URL": hoviyat_settings.database_url or "",
        "HOVIYAT_REGISTRY_PATH": str(hoviyat_settings.registry_path),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "idp.cli", "clients", "statement-issuer", *args]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    signer = new_key("ES256")
    jwks_file = tmp_path / "issuer.jwks"
    jwks_file.write_text(json.dumps({"keys": [_public(signer)]}))
    added = run(
        "add",
        *("--issuer", ISSUER, "--jwks-file", str(jwks_file)),
        *("--national-id", entity.national_id, "--service", SERVICE, "--json"),
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["status"] == "trusted"
    assert register(asgi_browser, sign(signer, claims())).status_code == 201

    private_file = tmp_path / "private.jwks"
    private_file.write_text(json.dumps({"keys": [signer.as_dict(private=True)]}))
    leaked = run(
        "add",
        *("--issuer", "https://other.example", "--jwks-file", str(private_file)),
        *("--national-id", entity.national_id, "--service", SERVICE),
    )
    assert leaked.returncode != 0 and "private" in leaked.stderr

    listed = run("list", "--json")
    assert [i["issuer"] for i in json.loads(listed.stdout)] == [ISSUER]
    revoked = run("revoke", "--issuer", ISSUER, "--json")
    assert revoked.returncode == 0, revoked.stderr
    refused(hoviyat_app, asgi_browser, sign(signer, claims()), "unapproved_software_statement")
    assert run("revoke", "--issuer", ISSUER).returncode != 0
    with hoviyat_app.state.hoviyat.db.read() as session:
        events = session.exec(
            select(AuditEntry).where(col(AuditEntry.event_type) == "dcr_statement_issuer")
        )
        assert [e.operation for e in events] == ["add", "revoke"]


def test_registration_is_in_discovery_only_when_served(
    hoviyat_settings: Settings, init_report: dict[str, Any], entity: LegalEntity
) -> None:
    for served in (True, False):
        app = create_app(hoviyat_settings.model_copy(update={"dynamic_registration": served}))
        try:
            with TestClient(app, base_url=hoviyat_settings.issuer) as browser:
                signer = new_key("ES256")
                trust(app, entity, signer, issuer=f"{ISSUER}/{served}")
                discovery = browser.get("/.well-known/openid-configuration").json()
                assert ("registration_endpoint" in discovery) is served
                statement = sign(signer, claims(iss=f"{ISSUER}/{served}"))
                answer = register(browser, statement)
                assert answer.status_code == (201 if served else 404), answer.text
        finally:
            app.state.hoviyat.close()


def test_spent_statements_are_pruned_once_expired(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    with hoviyat_app.state.hoviyat.db.session() as session:
        issuer_store.spend(session, "0" * 64, past)
    assert register(asgi_browser, sign(key, claims())).status_code == 201
    with hoviyat_app.state.hoviyat.db.read() as session:
        kept = [row.statement_id for row in session.exec(select(SpentStatement))]
    assert len(kept) == 1 and kept != ["0" * 64]


def test_attack_statement_made_for_another_server(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key: ECKey
) -> None:
    ours = hoviyat_app.state.hoviyat.settings.issuer
    for audience in ("https://other-idp.example", ["https://other-idp.example"], [ours, 7]):
        refused(
            hoviyat_app, asgi_browser, sign(key, claims(aud=audience)), "invalid_software_statement"
        )
    for audience in (ours, [ours, "https://other-idp.example"]):
        assert register(asgi_browser, sign(key, claims(aud=audience))).status_code == 201


def test_attack_issuer_revoked_between_verification_and_registration(
    hoviyat_app: FastAPI, key: ECKey
) -> None:
    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.read() as session:
        trusted = issuer_store.get(session, ISSUER)
    verified = software_statement.verify(
        sign(key, claims()), lambda _iss: trusted, time.time(), hoviyat.settings.issuer
    )
    with hoviyat.db.session() as session:
        statement_issuers.revoke(session, ISSUER)
    meta = rfc7591.check_metadata(software_statement.merged_metadata({}, verified))
    columns = rfc7591.attributes(meta, False)
    before = client_count(hoviyat_app)
    with pytest.raises(OAuthError) as refusal, hoviyat.db.session() as session:
        rfc7591.register(
            session,
            hoviyat.secrets,
            hoviyat.policies,
            hoviyat.settings.issuer,
            initial_token=None,
            meta=meta,
            columns=columns,
            statement=verified,
        )
    assert refusal.value.error == "unapproved_software_statement"
    assert client_count(hoviyat_app) == before
