"""Signed introspection responses (RFC 9701), as a resource server checks them.

The resource server asks with ``Accept: application/token-introspection+jwt``
and verifies the answer with python-jose (what agencies use) against the
published JWKS: issuer, audience, typ and the RFC 7662 members inside.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jose import jwt as jose_jwt
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    jwk_for,
    log_in,
    pkce_pair,
)

from verifiers.registry.base import Person

SIGNED = "application/token-introspection+jwt"


def _tokens(app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person) -> Any:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    code = code_for(app, browser, authorization_params(rp, challenge), login)
    return exchange(browser, rp, code, verifier).json()


def _introspect(
    browser: TestClient, rp: RelyingParty, token: str, accept: str | None
) -> httpx.Response:
    assert rp.client_secret is not None
    headers = {"Accept": accept} if accept else {}
    return browser.post(
        "/introspect",
        data={"token": token},
        auth=(rp.client_id, rp.client_secret),
        headers=headers,
    )


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def test_signed_introspection_verifies_with_python_jose(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    discovery = asgi_browser.get("/.well-known/openid-configuration").json()
    assert discovery["introspection_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
    jwks = asgi_browser.get("/jwks.json").json()
    tokens = _tokens(hoviyat_app, asgi_browser, rp, citizen)
    for accept in (SIGNED, f"application/json;q=0.5, {SIGNED};q=1"):
        answer = _introspect(asgi_browser, rp, tokens["access_token"], accept)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == SIGNED
        assert answer.headers["cache-control"] == "no-store"
        assert _header(answer.text)["typ"] == "token-introspection+jwt"
        claims = jose_jwt.decode(
            answer.text,
            jwk_for(answer.text, jwks),
            algorithms=["ES256"],
            audience=rp.client_id,
            issuer=discovery["issuer"],
        )
        inner = claims["token_introspection"]
        assert inner["active"] is True and inner["client_id"] == rp.client_id
        # §5: not a token itself: no sub or exp of its own at the top.
        assert "sub" not in claims and "exp" not in claims
    # The refresh token and an unknown token are answered signed too.
    for token, active in ((tokens["refresh_token"], True), ("not-a-token", False)):
        answer = _introspect(asgi_browser, rp, token, SIGNED)
        inner = jose_jwt.decode(
            answer.text, jwk_for(answer.text, jwks), algorithms=["ES256"], audience=rp.client_id
        )["token_introspection"]
        assert inner["active"] is active


def test_plain_json_stays_the_default(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    tokens = _tokens(hoviyat_app, asgi_browser, rp, citizen)
    for accept in (None, "application/json", "application/jwt", "*/*"):
        answer = _introspect(asgi_browser, rp, tokens["access_token"], accept)
        assert answer.headers["content-type"] == "application/json", accept
        assert answer.json()["active"] is True


def test_attack_signed_introspection_response_presented_as_an_access_token_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    """It is signed by the same keys as access tokens; its typ keeps it from passing
    as one at userinfo or the verification API."""
    tokens = _tokens(hoviyat_app, asgi_browser, rp, citizen)
    signed = _introspect(asgi_browser, rp, tokens["access_token"], SIGNED).text
    bearer = {"Authorization": f"Bearer {signed}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401
    verify = asgi_browser.post("/v1/persons/verify", json={"national_code": "0"}, headers=bearer)
    assert verify.status_code == 401


def test_attack_unauthenticated_caller_asking_for_a_signed_answer_gets_an_oauth_error(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    tokens = _tokens(hoviyat_app, asgi_browser, rp, citizen)
    answer = asgi_browser.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        auth=(rp.client_id, "wrong-secret"),
        headers={"Accept": SIGNED},
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
