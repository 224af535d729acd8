"""Public clients (RFC 6749 §2.1, auth method ``none``): an agency's mobile app.

It holds no credential, so Hoviyat lets it register only for the code flow with
PKCE and DPoP-bound tokens, and binds its refresh token to the DPoP key it
proved (RFC 9449 §5): a stolen refresh token is useless without that key, and
a thief's try neither spends nor revokes it. Runs on SQLite and PostgreSQL over
the app's ASGI transport.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dpop_support import DPoPKey, claims_of
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import (
    LOGOUT_URI,
    REDIRECT_URI,
    SERVICE,
    RelyingParty,
    authorization_params,
    code_for,
    log_in,
    pkce_pair,
)

from idp.clients import create_client
from idp.oidc.registration import RegistrationError, oidc_attributes
from verifiers.registry.base import Person

APP = "agency-mobile-app"


def _public_client(app: FastAPI) -> RelyingParty:
    hoviyat = app.state.hoviyat
    columns = oidc_attributes(
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
        grant_types=["authorization_code", "refresh_token"],
        auth_method="none",
        id_token_alg="ES256",
        sector_identifier=None,
    )
    assert columns["dpop_bound_access_tokens"] is True  # a public client's tokens are bound
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="Agency mobile app",
            service_code=SERVICE,
            client_id=APP,
            with_secret=False,
            **columns,
        )
    assert created.client_secret is None
    return RelyingParty(APP, None, REDIRECT_URI)


def _url(browser: TestClient, path: str) -> str:
    return str(browser.base_url).rstrip("/") + path


def _token(
    browser: TestClient, data: dict[str, str], key: DPoPKey | None, **extra: Any
) -> httpx.Response:
    headers = {"DPoP": key.proof("POST", _url(browser, "/token"))} if key else {}
    return browser.post("/token", data={"client_id": APP, **data}, headers=headers, **extra)


def _code(app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    return code_for(app, browser, authorization_params(rp, challenge), login), verifier


def _redeem(
    browser: TestClient, rp: RelyingParty, code: str, verifier: str, key: DPoPKey | None
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    return _token(browser, data, key)


def _refresh(browser: TestClient, token: str, key: DPoPKey | None) -> httpx.Response:
    return _token(browser, {"grant_type": "refresh_token", "refresh_token": token}, key)


@pytest.fixture
def public(hoviyat_app: FastAPI) -> RelyingParty:
    return _public_client(hoviyat_app)


@pytest.fixture
def signed_in(
    hoviyat_app: FastAPI, asgi_browser: TestClient, public: RelyingParty, citizen: Person
) -> tuple[DPoPKey, dict[str, Any]]:
    key = DPoPKey()
    code, verifier = _code(hoviyat_app, asgi_browser, public, citizen)
    answer = _redeem(asgi_browser, public, code, verifier, key)
    assert answer.status_code == 200, answer.text
    return key, answer.json()


def test_public_client_logs_in_with_dpop_and_refreshes_with_the_same_key(
    asgi_browser: TestClient, signed_in: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = signed_in
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    refreshed = _refresh(asgi_browser, body["refresh_token"], key)
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    # The successor is bound to the same key as well.
    again = _refresh(asgi_browser, refreshed.json()["refresh_token"], DPoPKey())
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_attack_stolen_refresh_token_with_the_thiefs_key_is_refused_and_kept(
    asgi_browser: TestClient, signed_in: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = signed_in
    stolen = _refresh(asgi_browser, body["refresh_token"], DPoPKey())
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"
    # The thief's try spent nothing and revoked nothing: the holder refreshes.
    mine = _refresh(asgi_browser, body["refresh_token"], key)
    assert mine.status_code == 200, mine.text


def test_attack_stolen_refresh_token_without_a_proof_is_refused(
    asgi_browser: TestClient, signed_in: tuple[DPoPKey, dict[str, Any]]
) -> None:
    _key, body = signed_in
    answer = _refresh(asgi_browser, body["refresh_token"], None)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in ("invalid_grant", "invalid_dpop_proof", "invalid_request")


def test_attack_public_client_redeeming_without_dpop_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, public: RelyingParty, citizen: Person
) -> None:
    code, verifier = _code(hoviyat_app, asgi_browser, public, citizen)
    refused = _redeem(asgi_browser, public, code, verifier, None)
    assert refused.status_code in (400, 401), refused.text
    assert "access_token" not in refused.json()
    # The refusal kept the code for the app's retry with its key.
    assert _redeem(asgi_browser, public, code, verifier, DPoPKey()).status_code == 200


def test_attack_public_client_without_pkce_verifier_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, public: RelyingParty, citizen: Person
) -> None:
    code, _verifier = _code(hoviyat_app, asgi_browser, public, citizen)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    answer = _token(asgi_browser, data, DPoPKey())
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_attack_confidential_clients_id_alone_is_no_authentication(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    answer = asgi_browser.post(
        "/token", data={"grant_type": "client_credentials", "client_id": rp.client_id}
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"


def test_attack_public_client_may_not_use_client_credentials_or_introspect(
    asgi_browser: TestClient,
    public: RelyingParty,
    signed_in: tuple[DPoPKey, dict[str, Any]],
) -> None:
    granted = _token(asgi_browser, {"grant_type": "client_credentials"}, DPoPKey())
    assert granted.status_code in (400, 401), granted.text
    assert "access_token" not in granted.json()
    _key, body = signed_in
    introspected = asgi_browser.post(
        "/introspect", data={"token": body["access_token"], "client_id": APP}
    )
    assert introspected.status_code == 401, introspected.text
    assert introspected.json()["error"] == "invalid_client"


def test_attack_public_client_sending_a_secret_is_not_public(
    asgi_browser: TestClient, public: RelyingParty
) -> None:
    answer = _token(
        asgi_browser,
        {"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "guess"},
        DPoPKey(),
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("grants", "extra", "refusal"),
    [
        (["client_credentials"], {}, "client_credentials"),
        (
            ["authorization_code"],
            {"tls_client_certificate_bound_access_tokens": True},
            "certificate",
        ),
        (["authorization_code"], {"profile": "fapi2"}, "fapi2 client authenticates"),
    ],
)
def test_registrations_a_public_client_cannot_hold_are_refused(
    grants: list[str], extra: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(RegistrationError, match=refusal):
        oidc_attributes(
            redirect_uris=[REDIRECT_URI],
            post_logout_redirect_uris=[],
            grant_types=grants,
            auth_method="none",
            id_token_alg="ES256",
            sector_identifier=None,
            **extra,
        )


def test_discovery_lists_the_public_client_method_where_served(asgi_browser: TestClient) -> None:
    document = asgi_browser.get("/.well-known/openid-configuration").json()
    assert "none" in document["token_endpoint_auth_methods_supported"]
    assert "none" in document["revocation_endpoint_auth_methods_supported"]
    assert "none" not in document["introspection_endpoint_auth_methods_supported"]
