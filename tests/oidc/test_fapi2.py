"""The fapi2 client profile: the FAPI 2.0 Security Profile held per client.

A tax or banking app registered with profile fapi2 logs a citizen in only
through PAR, with private_key_jwt whose ``aud`` is exactly the issuer, and
gets only DPoP-bound tokens. Each rule has its negative case, driven over the
app's ASGI transport on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from dpop_support import DPoPKey, claims_of
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey
from oidc_support import (
    REDIRECT_URI,
    SERVICE,
    RelyingParty,
    authorization_params,
    code_for,
    log_in,
    pkce_pair,
    query_of,
)

from idp.clients import create_client
from idp.oidc.registration import RegistrationError, oidc_attributes
from verifiers.registry.base import Person

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ID = "rp-fapi2"


def _issuer(browser: TestClient) -> str:
    return str(browser.base_url).rstrip("/")


@pytest.fixture
def fapi_key(hoviyat_app: FastAPI) -> ECKey:
    key = ECKey.generate_key("P-256", auto_kid=True)
    hoviyat = hoviyat_app.state.hoviyat
    attributes = oidc_attributes(
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code", "refresh_token"],
        auth_method="private_key_jwt",
        id_token_alg="PS256",
        sector_identifier=None,
        jwks={"keys": [key.as_dict(private=False)]},
        profile="fapi2",
    )
    # The profile turns these on whatever was asked.
    assert attributes["require_pushed_authorization_requests"] is True
    assert attributes["dpop_bound_access_tokens"] is True
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="FAPI 2.0 bank",
            service_code=SERVICE,
            client_id=CLIENT_ID,
            with_secret=False,
            **attributes,
        )
    return key


def _assertion(key: ECKey, aud: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    token = joserfc_jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}


def _push(browser: TestClient, key: ECKey, dpop: DPoPKey, challenge: str) -> httpx.Response:
    params = {
        **authorization_params(_rp(), challenge),
        **_assertion(key, _issuer(browser)),
    }
    return browser.post(
        "/par",
        data=params,
        headers={"DPoP": dpop.proof("POST", _issuer(browser) + "/par")},
    )


def _rp() -> RelyingParty:
    return RelyingParty(CLIENT_ID, None, REDIRECT_URI)


def _redeem(
    browser: TestClient, key: ECKey, code: str, verifier: str, dpop: DPoPKey | None, aud: Any
) -> httpx.Response:
    headers = {"DPoP": dpop.proof("POST", _issuer(browser) + "/token")} if dpop else {}
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
        **_assertion(key, aud),
    }
    return browser.post("/token", data=data, headers=headers)


def test_fapi2_login_through_par_dpop_and_private_key_jwt(
    hoviyat_app: FastAPI, asgi_browser: TestClient, fapi_key: ECKey, citizen: Person
) -> None:
    dpop = DPoPKey()
    verifier, challenge = pkce_pair()
    pushed = _push(asgi_browser, fapi_key, dpop, challenge)
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["expires_in"] < 600  # FAPI 2.0 §5.3.2.1
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    params = {"client_id": CLIENT_ID, "request_uri": pushed.json()["request_uri"]}
    code = code_for(hoviyat_app, asgi_browser, params, login)
    issuer = _issuer(asgi_browser)
    # The negative cases first: none of them spends the code.
    for aud in (issuer + "/token", [issuer], issuer + "/par"):
        refused = _redeem(asgi_browser, fapi_key, code, verifier, dpop, aud)
        assert refused.status_code == 401, (aud, refused.text)
        assert refused.json()["error"] == "invalid_client"
    without_proof = _redeem(asgi_browser, fapi_key, code, verifier, None, issuer)
    assert without_proof.json()["error"] == "invalid_dpop_proof"
    another_key = _redeem(asgi_browser, fapi_key, code, verifier, DPoPKey(), issuer)
    assert another_key.json()["error"] == "invalid_grant"  # the code is bound at /par
    issued = _redeem(asgi_browser, fapi_key, code, verifier, dpop, issuer)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    assert claims_of(issued.json()["access_token"])["cnf"] == {"jkt": dpop.jkt}


def test_attack_plain_authorization_request_for_a_fapi2_client_is_refused(
    asgi_browser: TestClient, fapi_key: ECKey
) -> None:
    _verifier, challenge = pkce_pair()
    answer = asgi_browser.get(
        "/authorize", params=authorization_params(_rp(), challenge), follow_redirects=False
    )
    assert answer.status_code == 302
    assert query_of(answer.headers["location"])["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"auth_method": "client_secret_basic"}, "private_key_jwt"),
        ({"id_token_alg": "RS256"}, "PS256 or ES256"),
        ({"grant_types": ["client_credentials"], "redirect_uris": []}, "authorization code"),
        ({"profile": "fapi1"}, "unknown profile"),
    ],
)
def test_registration_that_cannot_hold_the_profile_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    arguments: dict[str, Any] = {
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code"],
        "auth_method": "private_key_jwt",
        "id_token_alg": "ES256",
        "sector_identifier": None,
        "jwks": {"keys": [key.as_dict(private=False)]},
        "profile": "fapi2",
        **changes,
    }
    with pytest.raises(RegistrationError, match=reason):
        oidc_attributes(**arguments)


def test_admin_api_registers_a_fapi2_client(app_client: TestClient, admin_token: str) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    body = {
        "name": "FAPI bank",
        "service_code": SERVICE,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.as_dict(private=False)]},
        "profile": "fapi2",
    }
    headers = {"Authorization": f"Bearer {admin_token}"}
    created = app_client.post("/v1/admin/clients", json=body, headers=headers)
    assert created.status_code == 201, created.text
    summary = created.json()
    assert summary["profile"] == "fapi2"
    assert summary["require_pushed_authorization_requests"] is True
    assert summary["dpop_bound_access_tokens"] is True
    weak = {**body, "token_endpoint_auth_method": "client_secret_basic", "jwks": None}
    refused = app_client.post("/v1/admin/clients", json=weak, headers=headers)
    assert refused.status_code == 422 and "private_key_jwt" in refused.json()["detail"]
    unknown = app_client.post("/v1/admin/clients", json={**body, "profile": "x"}, headers=headers)
    assert unknown.status_code == 422
