"""Resource indicators (RFC 8707): a token is good at the one API it was asked for.

The deployment lists one agency API beside Hoviyat's own. A token minted for
that agency carries its URI alone in ``aud``: replayed at Hoviyat's
verification API or at userinfo it is refused. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx
import pytest
from dpop_support import claims_of
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
)

from idp.settings import Settings
from verifiers.registry.base import Person

AGENCY_API = "https://api.tax.example.ir/v2"


@pytest.fixture
def hoviyat_settings(hoviyat_settings: Settings) -> Settings:
    return hoviyat_settings.model_copy(update={"resource_servers": [AGENCY_API]})


def _own_api(browser: TestClient) -> str:
    return str(browser.base_url).rstrip("/") + "/v1"


def _client_token(
    browser: TestClient, demo_clients: dict[str, str], **extra: str
) -> httpx.Response:
    return browser.post(
        "/token",
        data={"grant_type": "client_credentials", **extra},
        auth=("demo-bank", demo_clients["demo-bank"]),
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_client_token_for_an_agency_api_names_it_alone(
    asgi_browser: TestClient, demo_clients: dict[str, str]
) -> None:
    default = _client_token(asgi_browser, demo_clients)
    assert claims_of(default.json()["access_token"])["aud"] == _own_api(asgi_browser)
    named = _client_token(asgi_browser, demo_clients, resource=AGENCY_API)
    assert named.status_code == 200, named.text
    assert claims_of(named.json()["access_token"])["aud"] == AGENCY_API
    own = _client_token(asgi_browser, demo_clients, resource=_own_api(asgi_browser))
    assert claims_of(own.json()["access_token"])["aud"] == _own_api(asgi_browser)


def test_attack_agency_token_replayed_at_hoviyats_verification_api_is_refused(
    asgi_browser: TestClient, demo_clients: dict[str, str], citizen: Person
) -> None:
    token = _client_token(asgi_browser, demo_clients, resource=AGENCY_API).json()["access_token"]
    body = {"national_code": citizen.national_code}
    replayed = asgi_browser.post("/v1/persons/verify", json=body, headers=_bearer(token))
    assert replayed.status_code == 401, replayed.text
    own = _client_token(asgi_browser, demo_clients).json()["access_token"]
    admitted = asgi_browser.post("/v1/persons/verify", json=body, headers=_bearer(own))
    assert admitted.status_code == 200, admitted.text


@pytest.mark.parametrize(
    "resource",
    [
        "https://api.other-agency.example.ir/v1",  # not a resource this issuer serves
        AGENCY_API + "#fragment",  # §2: no fragment
        "/v1",  # §2: absolute URIs only
        "api.tax.example.ir/v2",
        AGENCY_API + "/",  # exact match: a longer path is another resource
    ],
)
def test_attack_token_for_a_resource_not_served_is_refused_invalid_target(
    asgi_browser: TestClient, demo_clients: dict[str, str], resource: str
) -> None:
    refused = _client_token(asgi_browser, demo_clients, resource=resource)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_target"


def _login_code(
    app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person
) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    return code_for(app, browser, authorization_params(rp, challenge), login), verifier


def test_attack_login_token_for_an_agency_api_replayed_at_userinfo_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    code, verifier = _login_code(hoviyat_app, asgi_browser, rp, citizen)
    # A refused resource does not spend the code.
    wrong = exchange(asgi_browser, rp, code, verifier, resource="https://evil.example/")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_target"
    tokens = exchange(asgi_browser, rp, code, verifier, resource=AGENCY_API)
    assert tokens.status_code == 200, tokens.text
    access_token = tokens.json()["access_token"]
    assert claims_of(access_token)["aud"] == AGENCY_API
    assert asgi_browser.get("/userinfo", headers=_bearer(access_token)).status_code == 401
    # Its client can still introspect it, and is told which API it is for.
    assert rp.client_secret is not None
    introspected = asgi_browser.post(
        "/introspect", data={"token": access_token}, auth=(rp.client_id, rp.client_secret)
    ).json()
    assert introspected["active"] is True and introspected["aud"] == AGENCY_API

    # A refresh names its own resource; a refused one keeps the refresh token usable.
    refresh_token = tokens.json()["refresh_token"]
    refused = asgi_browser.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "resource": "x:y"},
        auth=(rp.client_id, rp.client_secret),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    refreshed = asgi_browser.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(rp.client_id, rp.client_secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    own_token = refreshed.json()["access_token"]
    assert claims_of(own_token)["aud"] == _own_api(asgi_browser)
    assert asgi_browser.get("/userinfo", headers=_bearer(own_token)).status_code == 200
