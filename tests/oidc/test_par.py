"""Pushed authorization requests (RFC 9126), from the client's and the attacker's side.

Authlib drives the happy path over real HTTP; the attacks go over the app's
ASGI transport. Everything runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey
from oidc_support import (
    REDIRECT_URI,
    RelyingParty,
    authorization_params,
    log_in,
    log_in_and_return,
    pkce_pair,
    query_of,
    register_rp,
)
from sqlalchemy import update
from sqlmodel import select

from idp.app import create_app
from idp.oidc.registration import RegistrationError, oidc_attributes
from idp.oidc.rfc9126 import REQUEST_URI_PREFIX, digest
from idp.settings import Settings
from idp.storage import pushed_requests
from idp.storage.models import Client
from idp.storage.oidc import OidcPushedRequest
from verifiers.registry.base import Person

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JSON = {"Accept": "application/json"}


def push(browser: Any, rp: RelyingParty, **params: str) -> httpx.Response:
    assert rp.client_secret is not None
    response: httpx.Response = browser.post(
        "/par", data=params, auth=(rp.client_id, rp.client_secret)
    )
    return response


def pushed_uri(browser: Any, rp: RelyingParty, **overrides: str | None) -> str:
    _verifier, challenge = pkce_pair()
    response = push(browser, rp, **authorization_params(rp, challenge, **overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


def authorize_with(
    browser: TestClient, client_id: str, request_uri: str, **headers: str
) -> httpx.Response:
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return browser.get(f"/authorize?{query}", headers=headers)


def refused_uri(response: httpx.Response) -> None:
    """Shown, never redirected: the error names invalid_request_uri (RFC 9126 §4)."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.json()["error"] == "invalid_request_uri"


# --- the client's side --------------------------------------------------------------------------


@pytest.fixture
def browser(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        yield client


def test_pushed_request_with_authlib_through_login_to_tokens(
    hoviyat_app: FastAPI, browser: httpx.Client, rp: RelyingParty, citizen: Person
) -> None:
    discovery = browser.get("/.well-known/openid-configuration").json()
    par_endpoint = discovery["pushed_authorization_request_endpoint"]
    assert par_endpoint == f"{discovery['issuer']}/par"
    assert discovery["require_pushed_authorization_requests"] is False
    assert discovery["request_uri_parameter_supported"] is False  # RFC 9101, not served
    client = OAuth2Client(
        client_id=rp.client_id,
        client_secret=rp.client_secret,
        scope="openid profile",
        redirect_uri=rp.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    # Authlib builds the parameters; they go to /par, client-authenticated, not to the browser.
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    pushed = client.request(
        "POST",
        par_endpoint,
        data=query_of(url),
        auth=client.client_auth("client_secret_basic"),
        withhold_token=True,
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    body = pushed.json()
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert 0 < body["expires_in"] <= 90
    front = f"{discovery['authorization_endpoint']}?" + urlencode(
        {"client_id": rp.client_id, "request_uri": body["request_uri"]}
    )
    back = log_in_and_return(
        hoviyat_app, browser, front, log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    )
    assert back.startswith(rp.redirect_uri + "?")
    assert query_of(back)["state"] == state
    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=back, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"
    assert token["id_token"].count(".") == 2
    # Used, the pushed request (and any login hint it carried) is gone.
    with hoviyat_app.state.hoviyat.db.read() as session:
        assert len(session.exec(select(OidcPushedRequest)).all()) == 0


def test_pushed_request_with_private_key_jwt_naming_the_par_endpoint(
    hoviyat_app: FastAPI, asgi_browser: TestClient
) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    rp = register_rp(
        hoviyat_app, "rp-par-keys", auth_method="private_key_jwt", jwks={"keys": [key.as_dict()]}
    )
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    now = int(time.time())
    assertion = joserfc_jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {
            "iss": rp.client_id,
            "sub": rp.client_id,
            "aud": f"{issuer}/par",  # RFC 9126 §2: the PAR endpoint is an accepted audience
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        },
        key,
        algorithms=["ES256"],
    )
    _verifier, challenge = pkce_pair()
    response = asgi_browser.post(
        "/par",
        data={
            **authorization_params(rp, challenge, login_hint="0012345678"),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert response.status_code == 201, response.text
    with hoviyat_app.state.hoviyat.db.read() as session:
        (row,) = session.exec(select(OidcPushedRequest)).all()
    # Kept: what /authorize reads; not kept: the client's credentials.
    assert row.params["login_hint"] == ["0012345678"]
    assert "client_assertion" not in row.params
    assert response.json()["request_uri"] not in repr(row.params) + row.request_uri_hash
    page = authorize_with(asgi_browser, rp.client_id, response.json()["request_uri"])
    assert page.status_code == 200, page.text  # the login form


def test_a_pushed_request_for_a_client_that_requires_par_logs_in(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _require_par(hoviyat_app, rp)
    page = authorize_with(asgi_browser, rp.client_id, pushed_uri(asgi_browser, rp))
    assert page.status_code == 200, page.text


# --- attacks ------------------------------------------------------------------------------------


def test_attack_request_uri_replayed_second_use_refused(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    request_uri = pushed_uri(asgi_browser, rp)
    assert authorize_with(asgi_browser, rp.client_id, request_uri).status_code == 200
    refused_uri(authorize_with(asgi_browser, rp.client_id, request_uri, **JSON))
    # A browser is shown the error page, not sent anywhere.
    page = authorize_with(asgi_browser, rp.client_id, request_uri)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "text/html" in page.headers["content-type"]


def test_attack_request_uri_used_by_another_client_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    request_uri = pushed_uri(asgi_browser, rp)
    other = register_rp(hoviyat_app, "rp-other", redirect_uris=["https://evil.example/cb"])
    refused_uri(authorize_with(asgi_browser, other.client_id, request_uri, **JSON))
    refused_uri(authorize_with(asgi_browser, "no-such-client", request_uri, **JSON))
    # Not spent by the thief: its own client can still use it.
    assert authorize_with(asgi_browser, rp.client_id, request_uri).status_code == 200


def test_attack_expired_request_uri_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    request_uri = pushed_uri(asgi_browser, rp)
    db = hoviyat_app.state.hoviyat.db
    with db.session() as session:
        session.execute(
            update(OidcPushedRequest).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused_uri(authorize_with(asgi_browser, rp.client_id, request_uri, **JSON))
    # The expired row, login hint and all, is dropped at the next use of the table.
    with db.read() as session:
        assert len(session.exec(select(OidcPushedRequest)).all()) == 0


@pytest.mark.parametrize(
    "request_uri",
    [
        "urn:ietf:params:oauth:request_uri:" + "A" * 43,  # well formed, never issued
        "https://attacker.example/request.jwt",  # by-reference request object (RFC 9101)
        "urn:ietf:params:oauth:request_uri:" + "x" * 500,
    ],
)
def test_attack_unknown_or_foreign_request_uri_refused(
    asgi_browser: TestClient, rp: RelyingParty, request_uri: str
) -> None:
    refused_uri(authorize_with(asgi_browser, rp.client_id, request_uri, **JSON))


def test_attack_pushed_request_carrying_request_uri_refused(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    first = pushed_uri(asgi_browser, rp)
    _verifier, challenge = pkce_pair()
    response = push(asgi_browser, rp, **authorization_params(rp, challenge, request_uri=first))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "request_uri" in response.json()["error_description"]


def test_attack_unauthenticated_par_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge)
    for attempt in (
        asgi_browser.post("/par", data=params),
        asgi_browser.post("/par", data=params, auth=(rp.client_id, "wrong-secret")),
        asgi_browser.post("/par", data={**params, "client_secret": "wrong-secret"}),
    ):
        assert attempt.status_code == 401, attempt.text
        assert attempt.json()["error"] == "invalid_client"
    # Another client's credentials cannot push a request in this client's name.
    other = register_rp(hoviyat_app, "rp-other")
    assert other.client_secret is not None
    stolen = asgi_browser.post("/par", data=params, auth=(other.client_id, other.client_secret))
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_request"
    with hoviyat_app.state.hoviyat.db.read() as session:
        assert len(session.exec(select(OidcPushedRequest)).all()) == 0


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "https://attacker.example/callback"}, "invalid_request"),
        ({"redirect_uri": REDIRECT_URI + "/extra"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request_object"),  # RFC 9101
    ],
)
def test_attack_par_with_bad_redirect_uri_or_parameters_refused(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    rp: RelyingParty,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    _verifier, challenge = pkce_pair()
    response = push(asgi_browser, rp, **authorization_params(rp, challenge, **overrides))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert "location" not in response.headers
    with hoviyat_app.state.hoviyat.db.read() as session:
        assert len(session.exec(select(OidcPushedRequest)).all()) == 0


def _require_par(app: FastAPI, rp: RelyingParty) -> None:
    with app.state.hoviyat.db.session() as session:
        session.execute(
            update(Client)
            .where(Client.client_id == rp.client_id)  # type: ignore[arg-type]
            .values(require_pushed_authorization_requests=True)
        )
    app.state.hoviyat.client_directory.forget(rp.client_id)


def test_attack_plain_authorize_refused_for_a_client_that_requires_par(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _require_par(hoviyat_app, rp)
    _verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge)
    response = asgi_browser.get("/authorize", params=params)
    # The redirect URI is the registered one, so the refusal goes back to the client.
    assert response.status_code == 302, response.text
    answer = query_of(response.headers["location"])
    assert response.headers["location"].startswith(rp.redirect_uri + "?")
    assert answer["error"] == "invalid_request"
    assert answer["state"] == params["state"]
    assert "code" not in answer


def test_attack_plain_authorize_refused_when_the_deployment_requires_par(
    hoviyat_settings: Settings, init_report: dict[str, Any]
) -> None:
    app = create_app(hoviyat_settings.model_copy(update={"require_par": True}))
    try:
        rp = register_rp(app, "rp-everyone-pushes")
        with TestClient(app, base_url=hoviyat_settings.issuer, follow_redirects=False) as browser:
            assert browser.get("/.well-known/openid-configuration").json()[
                "require_pushed_authorization_requests"
            ]
            _verifier, challenge = pkce_pair()
            plain = browser.get("/authorize", params=authorization_params(rp, challenge))
            assert plain.status_code == 302
            assert query_of(plain.headers["location"])["error"] == "invalid_request"
            page = authorize_with(browser, rp.client_id, pushed_uri(browser, rp))
            assert page.status_code == 200, page.text
    finally:
        app.state.hoviyat.close()


def test_attack_concurrent_use_of_one_request_uri_has_one_winner(
    browser: httpx.Client, live_server: Any, rp: RelyingParty
) -> None:
    """Two browsers race one request_uri over real HTTP: one login form, one refusal."""
    for _round in range(4):
        request_uri = pushed_uri(browser, rp)
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def use(uri: str = request_uri, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            query = urlencode({"client_id": rp.client_id, "request_uri": uri})
            answer = httpx.get(f"{live_server.url}/authorize?{query}", headers=JSON)
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=use) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200, 400], statuses


def test_attack_concurrent_take_across_connections_has_one_winner(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty
) -> None:
    """What two workers or hosts do: separate connections, one transaction each."""
    db = hoviyat_app.state.hoviyat.db
    for _round in range(4):
        request_uri = pushed_uri(asgi_browser, rp)
        barrier = threading.Barrier(2)
        taken: list[object] = []
        errors: list[BaseException] = []

        def take(uri: str = request_uri, gate: threading.Barrier = barrier) -> None:
            try:
                with db.session() as session:
                    gate.wait()
                    taken.append(
                        pushed_requests.take(session, digest(uri), rp.client_id, datetime.now(UTC))
                    )
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert sum(params is not None for params in taken) == 1, taken


# --- registration ------------------------------------------------------------------------------


def test_a_client_registered_to_require_par_must_push(
    hoviyat_app: FastAPI, app_client: TestClient, admin_token: str
) -> None:
    created = app_client.post(
        "/v1/admin/clients",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": "Land registry",
            "service_code": "demo-tax-portal",
            "redirect_uris": [REDIRECT_URI],
            "require_pushed_authorization_requests": True,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["require_pushed_authorization_requests"] is True
    rp = RelyingParty(created.json()["client_id"], created.json()["client_secret"], REDIRECT_URI)
    _verifier, challenge = pkce_pair()
    plain = app_client.get(
        "/authorize", params=authorization_params(rp, challenge), follow_redirects=False
    )
    assert query_of(plain.headers["location"])["error"] == "invalid_request"
    page = authorize_with(app_client, rp.client_id, pushed_uri(app_client, rp))
    assert page.status_code == 200, page.text


def test_requiring_par_without_the_code_flow_is_refused_at_registration() -> None:
    with pytest.raises(RegistrationError, match="authorization_code"):
        oidc_attributes(
            redirect_uris=[],
            post_logout_redirect_uris=[],
            grant_types=["client_credentials"],
            auth_method="client_secret_basic",
            id_token_alg="ES256",
            sector_identifier=None,
            require_pushed_authorization_requests=True,
        )
