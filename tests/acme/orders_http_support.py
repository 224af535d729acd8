"""Fixtures and steps for the order-side tests over HTTP: the app under a public-looking
issuer, its CA hierarchy, and the validators pointed at a loopback DNS server and http-01
responder on 127.0.0.1, ports 18200-18299 (the order side's range).

Import the fixtures into a test module (``from orders_http_support import ...``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from acme_client import AcmeClient, b64url
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from orders_support import csr_der
from responders import Http01Responder, LoopbackDns

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.acme.settings import AcmeSettings
from idp.context import Hoviyat
from idp.pki.hierarchy import Hierarchy
from idp.settings import Settings
from idp.storage.engine import Database

T = TypeVar("T")
PORTS = range(18200, 18300)

ISSUER = "https://pki.hoviyat.ir"  # public-looking: the CA/B Forum linter refuses loopback URLs
POLLS = 50


@pytest.fixture
def hoviyat_settings(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> Settings:
    """As tests/fixtures_app.py's, under the public-looking issuer the certificates name."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=ISSUER,
    )


def _on_free_port(start: Callable[[int], T]) -> T:
    """The first server of the range that starts (another module or run may hold a port)."""
    for port in PORTS:
        try:
            return start(port)
        except OSError:
            continue
    raise OSError("no free port in 18200-18299")


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    server = _on_free_port(lambda port: LoopbackDns("127.0.0.1", port).start())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web() -> Iterator[Http01Responder]:
    server = _on_free_port(lambda port: Http01Responder("127.0.0.1", port).start())
    yield server
    server.stop()


@pytest.fixture
def ca_root(
    hoviyat_settings: Settings, init_report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[x509.Certificate]:
    """The CA hierarchy, initialised as ``hoviyat ca init`` does; the root certificate."""
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "acme orders test passphrase")
    db = Database(hoviyat_settings.resolved_database_url)
    hierarchy = Hierarchy(
        db, open_keystore(CASettings(), hoviyat_settings.data_dir), hoviyat_settings.issuer
    )
    hierarchy.init()
    root = hierarchy.issuing_ca("infrastructure").chain[-1]
    db.dispose()
    yield root


@pytest.fixture
def world(
    hoviyat: Hoviyat, dns: LoopbackDns, web: Http01Responder, ca_root: x509.Certificate
) -> Hoviyat:
    """The app's validators dial the loopback DNS server and http-01 responder."""
    hoviyat.acme_settings = AcmeSettings(
        dns_resolver=dns.resolver, http01_port=web.port, validation_timeout_seconds=5.0
    )
    return hoviyat


def fresh_name(dns: LoopbackDns, label: str = "www") -> str:
    name = f"{label}-{secrets.token_hex(4)}.tax.example.com"
    dns.point(name, "127.0.0.1")
    return name


def new_order(client: AcmeClient, *names: str, **members: Any) -> httpx.Response:
    identifiers = [{"type": "dns", "value": name} for name in names]
    return client.post(client.url("newOrder"), {"identifiers": identifiers, **members}, check=False)


def poll(client: AcmeClient, url: str, until: tuple[str, ...]) -> dict[str, Any]:
    """POST-as-GET ``url`` until its status is one of ``until`` (bounded, not timed)."""
    body: dict[str, Any] = {}
    for _ in range(POLLS):
        body = client.post_as_get(url).json()
        if body["status"] in until:
            return body
    raise AssertionError(f"{url} stayed {body.get('status')}: {body}")


def key_authorization(client: AcmeClient, token: str) -> str:
    return f"{token}.{client.key.thumbprint}"


def answer_http01(client: AcmeClient, web: Http01Responder, authz_url: str) -> dict[str, Any]:
    authz = client.post_as_get(authz_url).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    web.serve(challenge["token"], key_authorization(client, challenge["token"]))
    answered = client.post(challenge["url"], {})
    assert answered.json()["status"] in ("processing", "valid")
    assert f'<{authz_url}>;rel="up"' in answered.headers.get("Link", "")
    return poll(client, authz_url, ("valid", "invalid"))


def ordered_and_proven(client: AcmeClient, web: Http01Responder, *names: str) -> dict[str, Any]:
    response = new_order(client, *names)
    assert response.status_code == 201, response.text
    order_url = response.headers["Location"]
    for authz_url in response.json()["authorizations"]:
        assert answer_http01(client, web, authz_url)["status"] == "valid"
    order = poll(client, order_url, ("ready", "invalid"))
    assert order["status"] == "ready", order
    return {"url": order_url, **order}


def finalize(
    client: AcmeClient, order: dict[str, Any], names: tuple[str, ...]
) -> tuple[dict[str, Any], Any]:
    der, key = csr_der(names)
    response = client.post(order["finalize"], {"csr": b64url(der)})
    assert response.headers["Location"] == order["url"]
    return poll(client, order["url"], ("valid", "invalid")), key


def issued(
    client: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> tuple[dict[str, Any], Any, str]:
    name = fresh_name(dns)
    order = ordered_and_proven(client, web, name)
    done, key = finalize(client, order, (name,))
    assert done["status"] == "valid", done
    return done, key, name


def der_b64(certificate: x509.Certificate) -> str:
    return b64url(certificate.public_bytes(Encoding.DER))


def problem(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix("urn:ietf:params:acme:error:")
