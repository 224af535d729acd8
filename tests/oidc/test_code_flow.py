"""The whole code flow with Authlib as an independent client, over real HTTP to uvicorn.

Discovery, authorization with PKCE, code exchange, ID token validation (Authlib
and python-jose against the published JWKS), userinfo in JSON and as a signed
JWT, refresh with rotation and reuse detection, introspection, revocation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.oidc.core import CodeIDToken
from fastapi import FastAPI
from jose import jwt as jose_jwt
from oidc.login_helpers import code_in, follow, last_text, living_with_mobile, submit
from oidc_support import (
    Login,
    RelyingParty,
    jwk_for,
    log_in,
    log_in_and_return,
    login_page,
    query_of,
    register_rp,
)
from sqlmodel import col

from idp.storage.models import AuditEntry
from policies import assurance
from verifiers.registry.base import Person


@pytest.fixture
def browser(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        yield client


@pytest.fixture
def discovery(browser: httpx.Client) -> dict[str, Any]:
    response = browser.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    return response.json()


def oauth_client(rp: RelyingParty, scope: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=rp.client_id,
        client_secret=rp.client_secret,
        scope=scope,
        redirect_uri=rp.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


def as_client(rp: RelyingParty, url: str, **data: str) -> httpx.Response:
    """A client-authenticated POST (client_secret_basic), as to introspection or revocation."""
    assert rp.client_secret is not None
    return httpx.post(url, data=data, auth=(rp.client_id, rp.client_secret))


def run_login(
    app: FastAPI,
    browser: httpx.Client,
    discovery: dict[str, Any],
    client: OAuth2Client,
    login: Login,
    **extra: str,
) -> tuple[dict[str, Any], str]:
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    back = log_in_and_return(app, browser, url, login)
    params = query_of(back)
    assert back.startswith(client.redirect_uri + "?")
    assert params["state"] == state
    assert params["iss"] == discovery["issuer"]  # RFC 9207
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    return token, nonce


def test_discovery_lists_what_is_served(discovery: dict[str, Any], live_server: Any) -> None:
    assert discovery["issuer"] == live_server.url
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ):
        assert discovery[endpoint].startswith(live_server.url), endpoint
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["subject_types_supported"] == ["pairwise"]
    assert set(discovery["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"]
    assert set(discovery["id_token_signing_alg_values_supported"]) == {"ES256", "PS256", "RS256"}
    assert "none" not in discovery["id_token_signing_alg_values_supported"]
    assert discovery["acr_values_supported"] == [
        assurance.LOW,
        assurance.SUBSTANTIAL,
        assurance.HIGH,
    ]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    # Every advertised endpoint is served (answers, though the calls are empty).
    assert httpx.get(discovery["authorization_endpoint"]).status_code == 400
    assert httpx.get(discovery["userinfo_endpoint"]).status_code == 401
    for endpoint in ("introspection_endpoint", "revocation_endpoint"):
        assert httpx.post(discovery[endpoint], data={"token": "x"}).status_code == 401
    assert httpx.get(discovery["end_session_endpoint"]).status_code == 200
    published = httpx.get(discovery["jwks_uri"]).json()["keys"]
    assert {key["alg"] for key in published} >= set(
        discovery["id_token_signing_alg_values_supported"]
    )


def test_code_flow_with_pkce_id_token_userinfo_refresh_introspect_revoke(
    hoviyat_app: FastAPI,
    browser: httpx.Client,
    discovery: dict[str, Any],
    rp: RelyingParty,
    citizen: Person,
) -> None:
    db = hoviyat_app.state.hoviyat.db
    client = oauth_client(rp, "openid profile national_code")
    token, nonce = run_login(
        hoviyat_app, browser, discovery, client, log_in(db, citizen.national_code)
    )
    jwks = browser.get(discovery["jwks_uri"]).json()

    # Authlib validates signature, iss, aud, exp, nonce and at_hash.
    claims = JsonWebToken(["ES256"]).decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": discovery["issuer"]}},
        claims_params={
            "nonce": nonce,
            "client_id": rp.client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate()
    assert claims["acr"] == assurance.LOW
    assert claims["amr"] == ["kba"]
    assert claims["sub"] != citizen.national_code
    # python-jose, a second independent implementation, agrees.
    again = jose_jwt.decode(
        token["id_token"],
        jwk_for(token["id_token"], jwks),
        algorithms=["ES256"],
        audience=rp.client_id,
        issuer=discovery["issuer"],
        access_token=token["access_token"],
    )
    assert again["sub"] == claims["sub"]

    # Userinfo: the policy discloses names and the national code, asked by scope.
    info = client.get(discovery["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]
    assert info["given_name"] == citizen.first_name
    assert info["family_name"] == citizen.last_name
    assert info["birthdate"] == citizen.birth_date.isoformat()
    assert info["national_code"] == citizen.national_code
    assert "phone_number" not in info  # not asked for
    signed = client.get(discovery["userinfo_endpoint"], headers={"Accept": "application/jwt"})
    assert signed.headers["content-type"].startswith("application/jwt")
    decoded = jose_jwt.decode(
        signed.text, jwk_for(signed.text, jwks), algorithms=["ES256"], audience=rp.client_id
    )
    assert decoded["given_name"] == citizen.first_name

    # Refresh rotates; the old token then counts as reuse (after the grace window).
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(discovery["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    introspection = discovery["introspection_endpoint"]
    introspected = as_client(rp, introspection, token=refreshed["access_token"]).json()
    assert introspected["active"] is True
    assert introspected["client_id"] == rp.client_id
    assert introspected["sub"] == claims["sub"]
    stale = as_client(rp, introspection, token=first_refresh, token_type_hint="refresh_token")
    assert stale.json() == {"active": False}

    # Revocation of the refresh token kills the grant: access token too.
    response = as_client(rp, discovery["revocation_endpoint"], token=refreshed["refresh_token"])
    assert response.status_code == 200
    revoked = as_client(rp, introspection, token=refreshed["access_token"])
    assert revoked.json() == {"active": False}
    assert client.get(discovery["userinfo_endpoint"]).status_code == 401

    with db.read() as session:
        from sqlmodel import select

        events = [
            entry.event_type
            for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))
            if entry.actor_id == rp.client_id
        ]
    assert events == [
        "authorization_code_issued",
        "token_issued",
        "token_issued",
        "token_revoked",
    ]


def hmac_with_public_key(claims: dict[str, Any], public_pem: bytes) -> str:
    """Key confusion: an HS256 JWT whose HMAC secret is the client's public key."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _short_lived_private_key_jwt() -> type:
    from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign

    class ShortLived(PrivateKeyJWT):  # type: ignore[misc]
        """Authlib signs assertions for an hour by default; Hoviyat takes at most 5 minutes."""

        def sign(self, auth: Any, token_endpoint: str) -> Any:
            return private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                expires_in=120,
            )

    return ShortLived


def test_private_key_jwt_client_with_ps256_id_tokens(
    hoviyat_app: FastAPI,
    browser: httpx.Client,
    discovery: dict[str, Any],
    citizen: Person,
) -> None:
    """Authlib signs RFC 7523 assertions; the ID token comes back in the client's PS256."""
    ShortLivedPrivateKeyJWT = _short_lived_private_key_jwt()
    from joserfc import jwt as joserfc_jwt
    from joserfc.jwk import RSAKey

    private_key = RSAKey.generate_key(2048, auto_kid=True)
    jwks = {"keys": [private_key.as_dict(private=False)]}
    rp = register_rp(hoviyat_app, "rp-pkjwt", auth_method="private_key_jwt", alg="PS256", jwks=jwks)
    token_endpoint = discovery["token_endpoint"]
    client = OAuth2Client(
        client_id=rp.client_id,
        client_secret=private_key,
        scope="openid profile",
        redirect_uri=rp.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="private_key_jwt",
    )
    client.register_client_auth_method(ShortLivedPrivateKeyJWT(token_endpoint, alg="PS256"))
    db = hoviyat_app.state.hoviyat.db
    token, nonce = run_login(
        hoviyat_app, browser, discovery, client, log_in(db, citizen.national_code)
    )
    published = browser.get(discovery["jwks_uri"]).json()
    # python-jose has no PS256; Authlib (joserfc underneath) verifies it.
    claims = JsonWebToken(["PS256"]).decode(
        token["id_token"],
        JsonWebKey.import_key_set(published),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": discovery["issuer"]}},
        claims_params={
            "nonce": nonce,
            "client_id": rp.client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate()
    assert claims["nonce"] == nonce
    header = jose_jwt.get_unverified_header(token["id_token"])  # header only
    assert header["alg"] == "PS256"
    assert any(key["kid"] == header["kid"] for key in published["keys"])

    # The same assertion twice: the jti was spent the first time (RFC 7523 §3 item 7).
    now = int(time.time())
    assertion = joserfc_jwt.encode(
        {"alg": "PS256", "kid": private_key.kid},
        {"iss": rp.client_id, "sub": rp.client_id, "aud": token_endpoint,
         "exp": now + 60, "iat": now, "jti": secrets.token_urlsafe(12)},
        private_key,
        algorithms=["PS256"],
    )  # fmt: skip
    form = {
        "token": token["access_token"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = httpx.post(discovery["introspection_endpoint"], data=form)
    assert first.json()["active"] is True
    replayed = httpx.post(discovery["introspection_endpoint"], data=form)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"
    # Wrong audience, and an HMAC "signature" made with the public key, are refused.
    for bad in (
        joserfc_jwt.encode(
            {"alg": "PS256"},
            {"iss": rp.client_id, "sub": rp.client_id, "aud": "https://elsewhere.example/token",
             "exp": now + 60, "jti": secrets.token_urlsafe(12)},
            private_key,
            algorithms=["PS256"],
        ),
        hmac_with_public_key(
            {"iss": rp.client_id, "sub": rp.client_id, "aud": token_endpoint,
             "exp": now + 60, "jti": secrets.token_urlsafe(12)},
            private_key.as_pem(private=False),
        ),
    ):  # fmt: skip
        response = httpx.post(
            discovery["introspection_endpoint"], data={**form, "client_assertion": bad}
        )
        assert response.status_code == 401


def back_to_client(browser: httpx.Client, response: httpx.Response, redirect_uri: str) -> str:
    """Follow Hoviyat's own redirects until the one that leaves for the client."""
    while response.headers["location"].startswith("/"):
        response = browser.get(response.headers["location"])
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    return location


def test_authlib_through_the_real_login_pages_at_low_then_substantial(
    hoviyat_app: FastAPI,
    browser: httpx.Client,
    discovery: dict[str, Any],
    rp: RelyingParty,
    synthetic_registry_path: Path,
) -> None:
    """No interaction row is touched here: the citizen types into the real forms."""
    person = living_with_mobile(synthetic_registry_path, skip=3)
    client = oauth_client(rp, "openid profile")
    jwks = browser.get(discovery["jwks_uri"]).json()

    # Level low: national code and birth date, then the consent screen.
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce="n-low"
    )
    page = login_page(browser, browser.get(url))
    consent = follow(browser, submit(browser, page, "/login/identify",
                                     national_code=person["national_code"],
                                     birth_date=person["birth_date"]))  # fmt: skip
    back = back_to_client(
        browser, submit(browser, consent, "/login/consent", decision="allow"), rp.redirect_uri
    )
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    low = jose_jwt.decode(
        token["id_token"], jwk_for(token["id_token"], jwks), algorithms=["ES256"],
        audience=rp.client_id, issuer=discovery["issuer"], access_token=token["access_token"],
    )  # fmt: skip
    assert low["acr"] == "http://eidas.europa.eu/LoA/low"
    assert low["nonce"] == "n-low"

    # Step-up to substantial: only the mobile and its one-time code are asked.
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"],
        code_verifier=verifier,
        nonce="n-sub",
        acr_values="http://eidas.europa.eu/LoA/substantial",
    )
    page = login_page(browser, browser.get(url))
    otp_page = follow(browser, submit(browser, page, "/login/mobile", mobile=person["mobiles"][0]))
    entered = submit(browser, otp_page, "/login/otp", otp=code_in(last_text(hoviyat_app).body))
    back = back_to_client(browser, entered, rp.redirect_uri)
    assert query_of(back)["state"] == state
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    high = jose_jwt.decode(
        token["id_token"], jwk_for(token["id_token"], jwks), algorithms=["ES256"],
        audience=rp.client_id, issuer=discovery["issuer"], access_token=token["access_token"],
    )  # fmt: skip
    assert high["acr"] == "http://eidas.europa.eu/LoA/substantial"
    assert set(high["amr"]) == {"kba", "sms", "otp"}
    assert high["sub"] == low["sub"]
    assert high["auth_time"] >= low["auth_time"]
