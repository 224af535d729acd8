"""Back-Channel Logout 1.0: a client with a ``backchannel_logout_uri`` is told when the
session it logged a citizen in with ends.

A real HTTP receiver on loopback plays the relying party's endpoint and checks
each logout token as the specification's §2.6 asks, with python-jose. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jose import jwt as jose_jwt
from oidc_support import (
    REDIRECT_URI,
    SERVICE,
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    jwk_for,
    log_in,
    pkce_pair,
)
from sqlalchemy import func, select, update

from idp.app import create_app
from idp.clients import create_client
from idp.oidc import backchannel
from idp.oidc.registration import oidc_attributes
from idp.settings import Settings
from idp.storage.logout_deliveries import OidcLogoutDelivery
from verifiers.registry.base import Person

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """The relying party's logout endpoint: records tokens, answers the next status."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.statuses: list[int] = []  # answered in order; 200 once they run out
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                receiver.tokens.append(form["logout_token"][0])
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hoviyat_settings(hoviyat_settings: Settings) -> Settings:
    # The receiver is on loopback, which Hoviyat's deliverers call only when this
    # allows it (idp.oidc.outbound). This app's own deliverer thread stays off: the
    # tests deliver by hand, and a thread racing them made the counts flaky.
    return hoviyat_settings.model_copy(
        update={"outbound_allow_loopback": True, "backchannel_delivery_seconds": 0}
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    opened = Receiver()
    yield opened
    opened.close()


@pytest.fixture
def bcl_rp(hoviyat_app: FastAPI, receiver: Receiver) -> RelyingParty:
    hoviyat = hoviyat_app.state.hoviyat
    attributes = oidc_attributes(
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code"],
        auth_method="client_secret_basic",
        id_token_alg="ES256",
        sector_identifier=None,
        backchannel_logout_uri=receiver.uri,
    )
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="RP told of logouts",
            service_code=SERVICE,
            client_id="rp-bcl",
            **attributes,
        )
    return RelyingParty("rp-bcl", created.client_secret, REDIRECT_URI)


def _log_in_and_out(
    app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person
) -> dict[str, Any]:
    """A login through ``rp``, then RP-initiated logout with its ID token; the tokens."""
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    code = code_for(app, browser, authorization_params(rp, challenge), login)
    tokens: dict[str, Any] = exchange(browser, rp, code, verifier).json()
    ended = browser.get("/logout", params={"id_token_hint": tokens["id_token"]})
    assert ended.status_code == 200, ended.text
    return tokens


def _deliver(app: FastAPI) -> int:
    with httpx.Client() as http:
        return backchannel.deliver_due(app.state.hoviyat.db, http)


def _make_due(app: FastAPI) -> None:
    with app.state.hoviyat.db.session() as session:
        session.execute(
            update(OidcLogoutDelivery).values(
                next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )


def test_logout_token_reaches_the_client_and_verifies_as_section_2_6_asks(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    bcl_rp: RelyingParty,
    receiver: Receiver,
    citizen: Person,
) -> None:
    tokens = _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)
    assert _deliver(hoviyat_app) == 1
    (token,) = receiver.tokens
    jwks = asgi_browser.get("/jwks.json").json()
    issuer = asgi_browser.get("/.well-known/openid-configuration").json()["issuer"]
    claims = jose_jwt.decode(
        token, jwk_for(token, jwks), algorithms=["ES256"], audience=bcl_rp.client_id, issuer=issuer
    )
    assert jose_jwt.get_unverified_header(token)["typ"] == "logout+jwt"
    id_token = jose_jwt.get_unverified_claims(tokens["id_token"])
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"]
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims  # §2.4: MUST NOT, so it cannot pass as an ID token
    assert claims["exp"] - claims["iat"] <= 120 and claims["jti"]
    assert _deliver(hoviyat_app) == 0  # delivered once, not again


def test_an_endpoint_that_fails_is_retried_and_one_that_refuses_is_given_up(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    bcl_rp: RelyingParty,
    receiver: Receiver,
    citizen: Person,
) -> None:
    receiver.statuses = [503]
    _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)
    assert _deliver(hoviyat_app) == 0
    assert _deliver(hoviyat_app) == 0  # backing off: not due yet
    _make_due(hoviyat_app)
    assert _deliver(hoviyat_app) == 1
    assert len(receiver.tokens) == 2

    receiver.statuses = [400]  # §2.8: the RP rejected the token; retrying would not help
    _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)
    assert _deliver(hoviyat_app) == 0
    _make_due(hoviyat_app)
    assert _deliver(hoviyat_app) == 0
    assert len(receiver.tokens) == 3
    with hoviyat_app.state.hoviyat.db.read() as session:
        failed = session.execute(
            select(func.count()).where(OidcLogoutDelivery.failed_at.is_not(None))  # type: ignore[union-attr]
        ).scalar_one()
    assert failed == 1


def test_attack_two_deliverers_racing_send_each_notice_once(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    bcl_rp: RelyingParty,
    receiver: Receiver,
    citizen: Person,
) -> None:
    """Every worker and host runs a deliverer; the lease lets exactly one send."""
    for _ in range(3):
        _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)
    sent: list[int] = []
    threads = [
        threading.Thread(target=lambda: sent.append(_deliver(hoviyat_app))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 3
    assert len(receiver.tokens) == 3


def test_attack_a_dead_endpoint_cannot_grow_the_queue_without_bound(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    bcl_rp: RelyingParty,
    receiver: Receiver,
    citizen: Person,
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    with hoviyat_app.state.hoviyat.db.session() as session:
        for number in range(backchannel.MAX_PENDING_PER_CLIENT):
            session.add(
                OidcLogoutDelivery(
                    id=f"stuck-{number}",
                    client_id=bcl_rp.client_id,
                    uri=receiver.uri,
                    logout_token="x",
                    next_attempt_at=later,
                )
            )
    _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)  # the logout still works
    with hoviyat_app.state.hoviyat.db.read() as session:
        count = session.execute(select(func.count()).select_from(OidcLogoutDelivery)).scalar_one()
    assert count == backchannel.MAX_PENDING_PER_CLIENT


def test_another_running_worker_delivers_by_itself(
    hoviyat_app: FastAPI,
    hoviyat_settings: Settings,
    asgi_browser: TestClient,
    bcl_rp: RelyingParty,
    receiver: Receiver,
    citizen: Person,
) -> None:
    """A second app over the same database, started as a server starts it (its
    lifespan runs the deliverer), sends the notice the first one queued."""
    worker = hoviyat_settings.model_copy(update={"backchannel_delivery_seconds": 0.2})
    with TestClient(create_app(worker)):
        _log_in_and_out(hoviyat_app, asgi_browser, bcl_rp, citizen)
        deadline = time.monotonic() + 20
        while not receiver.tokens and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(receiver.tokens) == 1


def test_discovery_and_registration(asgi_browser: TestClient) -> None:
    discovery = asgi_browser.get("/.well-known/openid-configuration").json()
    assert discovery["backchannel_logout_supported"] is True
    assert discovery["backchannel_logout_session_supported"] is True
