"""Challenges and authorizations over HTTP (RFC 8555 §7.5), on SQLite and PostgreSQL:
one validation per challenge however many workers are asked at once, a validation whose
worker died is taken up again by the next reader, and deactivation (§7.5.2)."""

# The fixtures come from orders_http_support (a test module, not a conftest of its own):
# their names are the parameters that use them.
# ruff: noqa: F811

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from acme_client import AcmeClient
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_app import LiveServer
from orders_http_support import (  # noqa: F401  (fixtures)
    ca_root,
    dns,
    fresh_name,
    hoviyat_settings,
    key_authorization,
    new_order,
    poll,
    problem,
    web,
    world,
)
from responders import CHALLENGE_PATH, Http01Responder, LoopbackDns

from idp.context import Hoviyat
from idp.storage import acme_orders as store


def _http01(client: AcmeClient, authz_url: str) -> dict[str, Any]:
    authz = client.post_as_get(authz_url).json()
    return dict(next(c for c in authz["challenges"] if c["type"] == "http-01"))


def _fetches(web: Http01Responder, token: str) -> int:
    return sum(1 for _, path in web.requests() if path == CHALLENGE_PATH + token)


def test_attack_challenge_answered_on_two_workers_at_once_is_validated_once(
    world: Hoviyat,
    acme_account: AcmeClient,
    other_app: TestClient,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    other_app.app.state.hoviyat.acme_settings = world.acme_settings  # type: ignore[attr-defined]
    response = new_order(acme_account, fresh_name(dns))
    authz_url = response.json()["authorizations"][0]
    challenge = _http01(acme_account, authz_url)
    token = challenge["token"]
    # The first validation's fetch is held at the responder while the second worker is asked.
    web.hold(CHALLENGE_PATH + token, then=key_authorization(acme_account, token).encode())
    first = threading.Thread(target=lambda: acme_account.post(challenge["url"], {}))
    first.start()
    for _ in range(400):  # bounded wait for the fetch to arrive, not a timing assertion
        if _fetches(web, token):
            break
        time.sleep(0.01)
    assert _fetches(web, token) == 1
    # Another process (its own engine and state, the same database) asked the same.
    second = AcmeClient(
        other_app,
        acme_account.directory_url,
        acme_account.key,
        account_url=acme_account.account_url,
    )
    answered = second.post(challenge["url"], {}).json()
    assert answered["status"] == "processing"
    web.release(CHALLENGE_PATH + token)
    first.join()
    assert poll(acme_account, authz_url, ("valid", "invalid"))["status"] == "valid"
    assert _fetches(web, token) == 1


def test_validation_abandoned_by_a_dead_worker_is_run_by_the_next_reader(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    response = new_order(acme_account, fresh_name(dns))
    authz_url = response.json()["authorizations"][0]
    challenge = _http01(acme_account, authz_url)
    web.serve(challenge["token"], key_authorization(acme_account, challenge["token"]))
    challenge_id = challenge["url"].rsplit("/", 1)[1]
    now = datetime.now(UTC)
    with world.db.session() as session:  # claimed by a worker that then died
        assert store.claim_challenge(session, challenge_id, now, now - timedelta(seconds=1)) == 1
    assert _fetches(web, challenge["token"]) == 0
    authz = poll(acme_account, authz_url, ("valid", "invalid"))
    assert authz["status"] == "valid"
    assert _fetches(web, challenge["token"]) == 1
    with world.db.read() as session:
        row = store.get_challenge(session, challenge_id)
    assert row is not None and (row.status, row.attempt) == ("valid", 2)


def test_deactivated_authorization_fails_its_order_and_is_not_validated(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    response = new_order(acme_account, fresh_name(dns), fresh_name(dns))
    order_url = response.headers["Location"]
    authz_url = response.json()["authorizations"][0]
    challenge = _http01(acme_account, authz_url)
    web.serve(challenge["token"], key_authorization(acme_account, challenge["token"]))
    deactivated = acme_account.post(authz_url, {"status": "deactivated"}).json()
    assert deactivated["status"] == "deactivated"
    assert acme_account.post(challenge["url"], {}).json()["status"] == "pending"
    assert _fetches(web, challenge["token"]) == 0
    assert acme_account.post_as_get(order_url).json()["status"] == "invalid"
    again = acme_account.post(authz_url, {"status": "deactivated"}, check=False)
    assert (again.status_code, problem(again)) == (400, "malformed")


def test_attack_authorization_cannot_be_set_valid_by_the_client(
    world: Hoviyat, acme_account: AcmeClient, dns: LoopbackDns
) -> None:
    response = new_order(acme_account, fresh_name(dns))
    authz_url = response.json()["authorizations"][0]
    forced = acme_account.post(authz_url, {"status": "valid"}, check=False)
    assert (forced.status_code, problem(forced)) == (400, "malformed")
    assert acme_account.post_as_get(authz_url).json()["status"] == "pending"


class _ToLoopback(httpx.BaseTransport):
    """Sends requests for the public issuer to the live server on loopback, unchanged
    otherwise (the JWS ``url`` is the public one, as a deployed client signs it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return self.inner.handle_request(request)


def _free_port() -> int:
    for port in range(18200, 18300):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port in 18200-18299")


def test_challenge_answer_returns_before_the_validation_ends(
    world: Hoviyat,
    hoviyat_app: FastAPI,
    acme_account: AcmeClient,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    """§7.5.1: the server answers ``processing`` and validates after; under uvicorn the
    answer is not held back by a validation that waits on the client's server."""
    port = _free_port()
    with LiveServer(hoviyat_app, port), httpx.Client(transport=_ToLoopback(port)) as http:
        client = AcmeClient(
            http, acme_account.directory_url, acme_account.key, account_url=acme_account.account_url
        )
        response = new_order(client, fresh_name(dns))
        authz_url = response.json()["authorizations"][0]
        challenge = _http01(client, authz_url)
        token = challenge["token"]
        web.hold(CHALLENGE_PATH + token, then=key_authorization(client, token).encode())
        answered = client.post(challenge["url"], {}).json()
        assert answered["status"] == "processing"  # answered while the fetch is held
        assert client.post_as_get(authz_url).json()["status"] == "pending"
        web.release(CHALLENGE_PATH + token)
        assert poll(client, authz_url, ("valid", "invalid"))["status"] == "valid"
