"""OIDC test support: a registered relying party, logins, and the browser's leg of the flow.

A login is made with the login pages' own storage functions (``start_session``)
and the interaction row is filled exactly as the login pages fill it: that row
is the contract between the two parts, so filling it is using the interface,
not mocking the logic behind it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from idp.clients import create_client
from idp.login.sessions import cookie_name, start_session
from idp.oidc.rfc7636 import s256
from idp.storage.engine import Database
from idp.storage.oidc import OidcInteraction
from policies import assurance

REDIRECT_URI = "https://rp.example/callback"
LOGOUT_URI = "https://rp.example/logged-out"
SERVICE = "demo-tax-portal"


@dataclass(frozen=True)
class RelyingParty:
    client_id: str
    client_secret: str | None
    redirect_uri: str


@dataclass(frozen=True)
class Login:
    session_id: str
    cookie_token: str
    national_code: str
    acr: str


def register_rp(
    app: FastAPI,
    client_id: str,
    *,
    auth_method: str = "client_secret_basic",
    alg: str = "ES256",
    jwks: dict[str, Any] | None = None,
    service: str = SERVICE,
    redirect_uris: list[str] | None = None,
) -> RelyingParty:
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name=f"RP {client_id}",
            service_code=service,
            client_id=client_id,
            with_secret=auth_method != "private_key_jwt",
            token_endpoint_auth_method=auth_method,
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=redirect_uris or [REDIRECT_URI],
            post_logout_redirect_uris=[LOGOUT_URI],
            id_token_signed_response_alg=alg,
            jwks=jwks,
        )
    return RelyingParty(client_id, created.client_secret, (redirect_uris or [REDIRECT_URI])[0])


def log_in(db: Database, national_code: str, acr: str = assurance.LOW) -> Login:
    amr = ["kba"] if acr == assurance.LOW else ["kba", "sms", "otp"]
    with db.session() as session:
        row, token = start_session(
            session,
            national_code=national_code,
            acr=acr,
            amr=amr,
            tracking_code="LOGIN-TEST",
            ttl_seconds=3600,
        )
        if acr != assurance.LOW:
            row.mobile = "+989121234567"
            session.add(row)
    return Login(row.id, token, national_code, acr)


def finish_interaction(
    db: Database,
    interaction_id: str,
    login: Login | None,
    *,
    consent: bool = True,
    entity_national_id: str | None = None,
    error: str | None = None,
) -> None:
    """What the login pages write when the user is done (the interaction contract)."""
    with db.session() as session:
        row = session.get(OidcInteraction, interaction_id)
        assert row is not None, interaction_id
        now = datetime.now(UTC)
        if login is not None:
            row.session_id = login.session_id
            row.acr = login.acr
            row.amr = ["kba"] if login.acr == assurance.LOW else ["kba", "otp", "sms"]
            row.auth_time = now
        row.entity_national_id = entity_national_id
        row.consent_granted = consent
        row.error = error
        row.completed_at = now
        session.add(row)


def session_cookie(app: FastAPI, login: Login) -> dict[str, str]:
    return {cookie_name(app.state.hoviyat.settings): login.cookie_token}


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def start(browser: httpx.Client, authorization_url: str) -> str:
    """GET the authorization URL; returns the interaction id the login pages receive."""
    return interaction_of(browser.get(authorization_url))


def interaction_of(response: httpx.Response) -> str:
    """The interaction of /authorize's answer: a browser without a session gets the
    identify form from /authorize itself, one with a session a redirect to /login."""
    if response.status_code == 200:
        found = re.search(r'name="interaction" value="([^"]+)"', response.text)
        assert found is not None, response.text
        return found.group(1)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("/login?interaction="), location
    return query_of(location)["interaction"]


def login_page(browser: Any, response: httpx.Response) -> httpx.Response:
    """The first login page after /authorize answered ``response``."""
    interaction_of(response)
    return response if response.status_code == 200 else browser.get(response.headers["location"])


def complete(browser: httpx.Client, interaction_id: str) -> httpx.Response:
    return browser.get("/authorize/complete", params={"interaction": interaction_id})


def log_in_and_return(
    app: FastAPI,
    browser: httpx.Client,
    authorization_url: str,
    login: Login,
    **finish: object,
) -> str:
    """The whole browser leg; returns the redirect back to the client (its Location)."""
    interaction_id = start(browser, authorization_url)
    finish_interaction(app.state.hoviyat.db, interaction_id, login, **finish)  # type: ignore[arg-type]
    response = complete(browser, interaction_id)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def authorization_params(rp: RelyingParty, challenge: str, **overrides: str | None) -> dict:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid profile",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def code_for(
    app: FastAPI, browser: httpx.Client, params: dict, login: Login, **finish: object
) -> str:
    """Authorize, log in, complete; returns the code sent back to the client."""
    interaction_id = start(
        browser, str(browser.build_request("GET", "/authorize", params=params).url)
    )
    finish_interaction(app.state.hoviyat.db, interaction_id, login, **finish)  # type: ignore[arg-type]
    back = complete(browser, interaction_id)
    assert back.status_code == 302, back.text
    answer = query_of(back.headers["location"])
    assert "code" in answer, answer
    return answer["code"]


def exchange(
    browser: httpx.Client, rp: RelyingParty, code: str, verifier: str | None, **extra: str
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(extra)
    assert rp.client_secret is not None
    return browser.post("/token", data=data, auth=(rp.client_id, rp.client_secret))


def jwk_for(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The published key the token names, as an RP picks it (python-jose wants one key)."""
    kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    (key,) = [key for key in jwks["keys"] if key["kid"] == kid]
    return key
