"""JARM (response_mode=jwt): the authorization response as one signed JWT.

The relying party checks it as a FAPI 2.0 client would, with python-jose
against the published JWKS: issuer, audience (itself), expiry, then the code
or error inside. Over the app's ASGI transport, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jose import JWTError
from jose import jwt as jose_jwt
from oidc_support import (
    RelyingParty,
    authorization_params,
    complete,
    exchange,
    finish_interaction,
    jwk_for,
    log_in,
    pkce_pair,
    query_of,
    session_cookie,
    start,
)

from idp.login.consent import remember_consent
from verifiers.registry.base import Person

PROFILE_CLAIMS = ["family_name", "given_name", "name", "birthdate", "father_name", "gender"]


def _url(browser: TestClient, params: dict[str, str]) -> str:
    return str(browser.build_request("GET", "/authorize", params=params).url)


def _response_of(browser: TestClient, location: str, rp: RelyingParty) -> dict[str, Any]:
    """The client's side: only ``response`` comes back, and it verifies."""
    assert location.startswith(rp.redirect_uri), location
    query = query_of(location)
    assert set(query) == {"response"}, query
    token = query["response"]
    issuer = browser.get("/.well-known/openid-configuration").json()["issuer"]
    claims: dict[str, Any] = jose_jwt.decode(
        token,
        jwk_for(token, browser.get("/jwks.json").json()),
        algorithms=["ES256"],
        audience=rp.client_id,
        issuer=issuer,
    )
    assert time.time() < claims["exp"] <= time.time() + 600
    return claims


@pytest.mark.parametrize("mode", ["jwt", "query.jwt"])
def test_code_comes_back_signed_and_redeems(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person, mode: str
) -> None:
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, response_mode=mode)
    interaction = start(asgi_browser, _url(asgi_browser, params))
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    finish_interaction(hoviyat_app.state.hoviyat.db, interaction, login)
    back = complete(asgi_browser, interaction)
    assert back.status_code == 302, back.text
    claims = _response_of(asgi_browser, back.headers["location"], rp)
    assert claims["state"] == params["state"]
    tokens = exchange(asgi_browser, rp, claims["code"], verifier)
    assert tokens.status_code == 200, tokens.text


def test_errors_come_back_signed_too(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    _verifier, challenge = pkce_pair()
    # An error found while checking the request, once the client is known.
    bad_scope = authorization_params(rp, challenge, response_mode="jwt", scope="openid nope")
    answer = asgi_browser.get("/authorize", params=bad_scope, follow_redirects=False)
    claims = _response_of(asgi_browser, answer.headers["location"], rp)
    assert claims["error"] == "invalid_scope" and claims["state"] == bad_scope["state"]
    # prompt=none without a login session.
    silent = authorization_params(rp, challenge, response_mode="jwt", prompt="none")
    answer = asgi_browser.get("/authorize", params=silent, follow_redirects=False)
    assert _response_of(asgi_browser, answer.headers["location"], rp)["error"] == "login_required"
    # The user refuses consent on the login pages.
    params = authorization_params(rp, challenge, response_mode="jwt")
    interaction = start(asgi_browser, _url(asgi_browser, params))
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    finish_interaction(hoviyat_app.state.hoviyat.db, interaction, login, consent=False)
    back = complete(asgi_browser, interaction)
    assert _response_of(asgi_browser, back.headers["location"], rp)["error"] == "access_denied"


def test_prompt_none_with_a_session_answers_signed(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    verifier, challenge = pkce_pair()
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, citizen.national_code)
    with db.session() as session:
        remember_consent(session, citizen.national_code, rp.client_id, PROFILE_CLAIMS)
    silent = authorization_params(rp, challenge, response_mode="jwt", prompt="none")
    answer = asgi_browser.get(
        "/authorize",
        params=silent,
        cookies=session_cookie(hoviyat_app, login),
        follow_redirects=False,
    )
    claims = _response_of(asgi_browser, answer.headers["location"], rp)
    assert "code" in claims, claims
    assert exchange(asgi_browser, rp, claims["code"], verifier).status_code == 200


def test_attack_response_meant_for_one_client_is_refused_by_another(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    """A response JWT carried to another relying party (mix-up, a stolen response)
    fails its audience check; one altered in the browser fails its signature."""
    _verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, response_mode="jwt", scope="openid nope")
    answer = asgi_browser.get("/authorize", params=params, follow_redirects=False)
    token = query_of(answer.headers["location"])["response"]
    key = jwk_for(token, asgi_browser.get("/jwks.json").json())
    with pytest.raises(JWTError):
        jose_jwt.decode(token, key, algorithms=["ES256"], audience="another-client")
    head, payload, signature = token.split(".")
    altered = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    with pytest.raises(JWTError):
        jose_jwt.decode(altered, key, algorithms=["ES256"], audience=rp.client_id)


def test_unsupported_response_mode_is_refused_in_plain_query(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _verifier, challenge = pkce_pair()
    for mode in ("fragment.jwt", "form_post.jwt", "fragment"):
        params = authorization_params(rp, challenge, response_mode=mode)
        answer = asgi_browser.get("/authorize", params=params, follow_redirects=False)
        query = query_of(answer.headers["location"])
        assert query["error"] == "invalid_request", (mode, query)


def test_discovery_advertises_the_modes_and_algorithms(asgi_browser: TestClient) -> None:
    discovery = asgi_browser.get("/.well-known/openid-configuration").json()
    assert discovery["response_modes_supported"] == ["query", "jwt", "query.jwt"]
    assert discovery["authorization_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
