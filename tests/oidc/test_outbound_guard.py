"""Server-side request forgery through the URLs a client registers, refused (idp.oidc.outbound).

An agency that registers its own client (RFC 7591) names a back-channel logout
URI that Hoviyat will POST to, and may name a sector identifier document
Hoviyat will fetch. The attacks: pointing them at the cloud metadata service,
at loopback or private addresses (literally, by a name, or inside an IPv6
address), over plain http or with credentials; and changing the DNS after
registration, or between Hoviyat's check and its connection (rebinding). Each
is refused at registration and again at delivery, where a refused address is
given up, not retried.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from idp.app import create_app
from idp.oidc import backchannel, outbound, rfc7591
from idp.settings import Settings
from idp.storage import logout_deliveries
from idp.storage.logout_deliveries import OidcLogoutDelivery
from idp.storage.models import Client
from verifiers.registry.base import LegalEntity, Person

SERVICE = "demo-tax-portal"
PUBLIC = "93.184.215.14"  # a global unicast address, written as a literal: no DNS needed


class Receiver:
    """An endpoint inside Hoviyat's network that an attacker would like it to call."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.hits.append(self.path)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.uri = f"http://127.0.0.1:{self.port}/internal-admin"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    opened = Receiver()
    yield opened
    opened.close()


def _token(app: FastAPI, entity: LegalEntity) -> str:
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as session:
        token, _row = rfc7591.create_initial_token(
            session,
            hoviyat.secrets,
            national_id=entity.national_id,
            service_code=SERVICE,
            created_by="t",
        )
    return token


def _register(app: FastAPI, browser: TestClient, entity: LegalEntity, **extra: Any) -> Any:
    document = {"redirect_uris": ["https://portal.tax.example/cb"], **extra}
    headers = {"Authorization": f"Bearer {_token(app, entity)}"}
    return browser.post("/register", json=document, headers=headers)


def _client_count(app: FastAPI) -> int:
    with app.state.hoviyat.db.read() as session:
        return len(list(session.exec(select(Client))))


@pytest.fixture
def entity(representative: tuple[Person, LegalEntity]) -> LegalEntity:
    return representative[1]


REFUSED_URIS = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
    "https://[::ffff:169.254.169.254]/latest/",  # the same, IPv4-mapped
    "https://[64:ff9b::a9fe:a9fe]/latest/",  # the same, through NAT64's prefix
    "https://[2002:a9fe:a9fe::1]/latest/",  # the same, inside a 6to4 address
    "https://127.0.0.1/logout",
    "https://127.1/logout",
    "https://2130706433/logout",  # 127.0.0.1 as one decimal number
    "https://localhost/logout",  # a name that resolves to loopback
    "https://[::1]/logout",
    "https://0.0.0.0/logout",
    "https://10.1.2.3/logout",
    "https://172.16.0.1/logout",
    "https://192.168.1.1/logout",
    "https://100.64.0.1/logout",  # shared address space (RFC 6598)
    "https://[fd00::1]/logout",  # unique local (RFC 4193)
    "https://[fe80::1]/logout",
    "https://224.0.0.1/logout",
    f"http://{PUBLIC}/logout",  # plain http to a public address
    f"https://user:secret@{PUBLIC}/logout",
    "https://does-not-exist.invalid/logout",  # RFC 6761: never resolves
]


@pytest.mark.parametrize("uri", REFUSED_URIS)
def test_attack_backchannel_logout_uri_inside_the_network(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity, uri: str
) -> None:
    before = _client_count(hoviyat_app)
    response = _register(hoviyat_app, asgi_browser, entity, backchannel_logout_uri=uri)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert _client_count(hoviyat_app) == before


def test_attack_sector_identifier_at_cloud_metadata_is_never_fetched(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    response = _register(
        hoviyat_app,
        asgi_browser,
        entity,
        sector_identifier_uri="https://169.254.169.254/latest/user-data",
    )
    assert response.status_code == 400
    assert "169.254.169.254" in response.json()["error_description"]
    assert "does not call" in response.json()["error_description"]


def test_a_public_https_backchannel_uri_is_registered(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    uri = f"https://{PUBLIC}/logout"
    response = _register(hoviyat_app, asgi_browser, entity, backchannel_logout_uri=uri)
    assert response.status_code == 201, response.text
    assert response.json()["backchannel_logout_uri"] == uri


def test_loopback_only_with_the_setting_and_never_a_private_network(
    hoviyat_settings: Settings,
    init_report: dict[str, Any],
    entity: LegalEntity,
    receiver: Receiver,
) -> None:
    app = create_app(hoviyat_settings.model_copy(update={"outbound_allow_loopback": True}))
    try:
        with TestClient(app, base_url=hoviyat_settings.issuer) as browser:
            allowed = _register(app, browser, entity, backchannel_logout_uri=receiver.uri)
            assert allowed.status_code == 201, allowed.text
            private = _register(app, browser, entity, backchannel_logout_uri="https://10.0.0.1/")
            assert private.status_code == 400
            # http only to loopback, even with the setting.
            plain = _register(app, browser, entity, backchannel_logout_uri=f"http://{PUBLIC}/")
            assert plain.status_code == 400
    finally:
        app.state.hoviyat.close()


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("169.254.169.254", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::808:808", False),
        ("64:ff9b::7f00:1", True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo, client 10.0.0.1
        ("192.0.2.1", True),  # documentation (RFC 5737)
        ("2001:db8::1", True),
        ("255.255.255.255", True),
        ("239.255.255.250", True),  # multicast, which ipaddress calls global
    ],
)
def test_which_addresses_are_refused(address: str, refused: bool) -> None:
    assert outbound.refused(ipaddress.ip_address(address)) is refused


def _queue(app: FastAPI, uri: str) -> str:
    delivery_id = f"d-{time.monotonic_ns()}"
    with app.state.hoviyat.db.session() as session:
        logout_deliveries.enqueue(
            session,
            OidcLogoutDelivery(
                id=delivery_id,
                client_id="rp-moved",
                uri=uri,
                logout_token="x.y.z",
                next_attempt_at=datetime.now(UTC),
            ),
        )
    return delivery_id


def _row(app: FastAPI, delivery_id: str) -> OidcLogoutDelivery:
    with app.state.hoviyat.db.read() as session:
        row = session.get(OidcLogoutDelivery, delivery_id)
        assert row is not None
        return row


def test_attack_dns_changed_after_registration_is_refused_at_delivery(
    hoviyat_app: FastAPI, receiver: Receiver
) -> None:
    """The name was public when registered; it now answers loopback (here: the URI
    itself, as the stored row holds it). The delivery is given up, not retried."""
    delivery_id = _queue(hoviyat_app, receiver.uri)

    def guard(uri: str) -> None:
        outbound.check_url(uri, allow_loopback=False)

    with httpx.Client() as http:
        sent = backchannel.deliver_due(hoviyat_app.state.hoviyat.db, http, guard=guard)
    assert sent == 0 and receiver.hits == []
    row = _row(hoviyat_app, delivery_id)
    assert row.failed_at is not None and row.delivered_at is None


def test_attack_dns_rebinding_between_check_and_connection(
    hoviyat_app: FastAPI, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is told a public address, the connection would get loopback: the guarded
    transport resolves and checks again, and dials only what it checked."""
    delivery_id = _queue(hoviyat_app, f"http://rebind.example:{receiver.port}/internal-admin")
    real = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    def fooled(_uri: str) -> None:
        return None  # as if the name had answered a public address to the check

    transport = outbound.GuardedTransport(allow_loopback=False)
    with httpx.Client(transport=transport) as http:
        sent = backchannel.deliver_due(hoviyat_app.state.hoviyat.db, http, guard=fooled)
    assert sent == 0 and receiver.hits == []
    row = _row(hoviyat_app, delivery_id)
    assert row.delivered_at is None and row.attempts == 1  # a connection failure: retried
    # The same transport reaches the receiver when loopback is allowed: the refusal above
    # was the guard's, not a broken connection.
    with httpx.Client(transport=outbound.GuardedTransport(allow_loopback=True)) as http:
        assert http.post(receiver.uri).status_code == 200
    assert receiver.hits == ["/internal-admin"]


def test_a_running_deliverer_refuses_loopback_by_default(
    hoviyat_app: FastAPI, receiver: Receiver
) -> None:
    delivery_id = _queue(hoviyat_app, receiver.uri)
    deliverer = backchannel.Deliverer(hoviyat_app.state.hoviyat.db, interval=0.05)
    deliverer.start()
    try:
        deadline = time.monotonic() + 10
        while _row(hoviyat_app, delivery_id).failed_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        deliverer.stop()
    assert _row(hoviyat_app, delivery_id).failed_at is not None
    assert receiver.hits == []


def test_attack_update_moves_the_backchannel_uri_inside_the_network(
    hoviyat_app: FastAPI, asgi_browser: TestClient, entity: LegalEntity
) -> None:
    """RFC 7592 §2.2: an update is checked as a registration is."""
    public = f"https://{PUBLIC}/logout"
    answer = _register(hoviyat_app, asgi_browser, entity, backchannel_logout_uri=public).json()
    path = answer["registration_client_uri"].removeprefix(hoviyat_app.state.hoviyat.settings.issuer)
    document = {
        "client_id": answer["client_id"],
        "redirect_uris": answer["redirect_uris"],
        "backchannel_logout_uri": "https://169.254.169.254/latest/",
    }
    headers = {"Authorization": f"Bearer {answer['registration_access_token']}"}
    moved = asgi_browser.put(path, json=document, headers=headers)
    assert moved.status_code == 400, moved.text
    assert moved.json()["error"] == "invalid_client_metadata"
    with hoviyat_app.state.hoviyat.db.read() as session:
        client = session.get(Client, answer["client_id"])
        assert client is not None and client.backchannel_logout_uri == public
