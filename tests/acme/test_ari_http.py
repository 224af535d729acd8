"""Renewal information and ``replaces`` (RFC 9773) through a whole ACME exchange.

The app over ASGI on SQLite and PostgreSQL, a real client (:mod:`acme_client`)
bound by EAB, a CA made as ``hoviyat ca init`` makes it, http-01 answered on a
loopback responder (this file's ports: 18300-18399). A 7-day certificate is
ordered by profile, its renewal window read from the directory's
``renewalInfo``, and renewed with ``replaces``; the rest is the attacker's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from acme_client import AcmeClient, Eab, b64url
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from orders_support import csr_der
from responders import Http01Responder, LoopbackDns

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.acme.rfc9773 import RETRY_AFTER_SECONDS, cert_id_of, parse_cert_id
from idp.acme.settings import AcmeSettings
from idp.context import Hoviyat
from idp.pki.hierarchy import Hierarchy
from idp.settings import Settings
from idp.storage.engine import Database

ISSUER = "https://pki.hoviyat.ir"  # public-looking: the CA/B Forum linter refuses loopback URLs
DNS_PORT = 18353
HTTP01_PORT = 18380
POLLS = 50


@pytest.fixture
def hoviyat_settings(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=ISSUER,
    )


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    with LoopbackDns("127.0.0.1", DNS_PORT) as server:
        yield server


@pytest.fixture(scope="module")
def web() -> Iterator[Http01Responder]:
    with Http01Responder("127.0.0.1", HTTP01_PORT) as server:
        yield server


@pytest.fixture
def world(
    hoviyat: Hoviyat,
    hoviyat_settings: Settings,
    init_report: dict[str, Any],
    dns: LoopbackDns,
    web: Http01Responder,
    monkeypatch: pytest.MonkeyPatch,
) -> Hoviyat:
    """The CA made as ``hoviyat ca init`` makes it; validators dial the loopback servers."""
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "acme ari test passphrase")
    db = Database(hoviyat_settings.resolved_database_url)
    Hierarchy(
        db, open_keystore(CASettings(), hoviyat_settings.data_dir), hoviyat_settings.issuer
    ).init()
    db.dispose()
    hoviyat.acme_settings = AcmeSettings(
        dns_resolver=dns.resolver, http01_port=web.port, validation_timeout_seconds=5.0
    )
    return hoviyat


def problem(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix("urn:ietf:params:acme:error:")


def poll(client: AcmeClient, url: str, until: tuple[str, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(POLLS):
        body = client.post_as_get(url).json()
        if body["status"] in until:
            return body
    raise AssertionError(f"{url} stayed {body.get('status')}: {body}")


def order(client: AcmeClient, names: tuple[str, ...], **members: Any) -> httpx.Response:
    identifiers = [{"type": "dns", "value": name} for name in names]
    return client.post(client.url("newOrder"), {"identifiers": identifiers, **members}, check=False)


def obtain(
    client: AcmeClient, web: Http01Responder, names: tuple[str, ...], **members: Any
) -> tuple[x509.Certificate, dict[str, Any]]:
    """Order, prove by http-01, finalize and download: the leaf and the final order."""
    created = order(client, names, **members)
    assert created.status_code == 201, created.text
    order_url = created.headers["Location"]
    for authz_url in created.json()["authorizations"]:
        authz = client.post_as_get(authz_url).json()
        if authz["status"] != "valid":
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            web.serve(challenge["token"], f"{challenge['token']}.{client.key.thumbprint}")
            client.post(challenge["url"], {})
            assert poll(client, authz_url, ("valid", "invalid"))["status"] == "valid"
    ready = poll(client, order_url, ("ready", "invalid"))
    assert ready["status"] == "ready", ready
    der, _ = csr_der(names)
    client.post(ready["finalize"], {"csr": b64url(der)})
    done = poll(client, order_url, ("valid", "invalid"))
    assert done["status"] == "valid", done
    chain = x509.load_pem_x509_certificates(client.post_as_get(done["certificate"]).content)
    return chain[0], done


def fresh_names(dns: LoopbackDns) -> tuple[str, ...]:
    names = (f"www-{secrets.token_hex(4)}.tax.example.com",)
    for name in names:
        dns.point(name, "127.0.0.1")
    return names


def renewal_info(http: TestClient, client: AcmeClient, cert_id: str) -> httpx.Response:
    # §4.1: an unauthenticated GET under the directory's renewalInfo URL.
    return http.get(f"{client.url('renewalInfo')}/{cert_id}")


def test_short_lived_certificate_renewed_with_replaces(
    world: Hoviyat,
    acme_account: AcmeClient,
    app_client: TestClient,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    names = fresh_names(dns)
    first, done = obtain(acme_account, web, names, profile="tls-server-short")
    assert done["profile"] == "tls-server-short"
    lifetime = first.not_valid_after_utc - first.not_valid_before_utc + timedelta(seconds=1)
    assert lifetime <= timedelta(days=7)

    cert_id = cert_id_of(first)
    info = renewal_info(app_client, acme_account, cert_id)
    assert info.status_code == 200, info.text
    assert int(info.headers["Retry-After"]) == RETRY_AFTER_SECONDS
    window = info.json()["suggestedWindow"]
    start = datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    assert datetime.now(UTC) < start < first.not_valid_after_utc

    second, renewed = obtain(acme_account, web, names, profile="tls-server-short", replaces=cert_id)
    assert renewed["replaces"] == cert_id
    assert second.serial_number != first.serial_number

    # §5: a certificate is replaced once; the client is told so, with 409.
    again = order(acme_account, names, replaces=cert_id)
    assert (again.status_code, problem(again)) == (409, "alreadyReplaced")


def test_attack_replacing_another_accounts_certificate_or_a_respelled_cert_id(
    world: Hoviyat,
    acme_account: AcmeClient,
    make_client: Callable[..., AcmeClient],
    make_eab: Callable[[], Eab],
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    names = fresh_names(dns)
    theirs, _ = obtain(acme_account, web, names)
    cert_id = cert_id_of(theirs)

    # Another account of the same entity, for the same names: not its certificate.
    other = make_client()
    eab = make_eab()
    assert other.new_account(eab.kid, eab.hmac_key).status_code == 201
    stolen = order(other, names, replaces=cert_id)
    assert (stolen.status_code, problem(stolen)) == (403, "unauthorized")

    # The owner's own certificate, spelled a second way, would dodge "replaced once".
    parsed = parse_cert_id(cert_id)
    respelled = (
        cert_id + "=",
        cert_id.split(".")[0] + "." + b64url(b"\x00" + parsed.serial.to_bytes(17, "big")),
    )
    for spelling in respelled:
        refused = order(acme_account, names, replaces=spelling)
        assert (refused.status_code, problem(refused)) == (400, "malformed"), spelling
    assert order(acme_account, names, replaces=7).status_code == 400


def test_attack_revoked_certificate_asks_for_renewal_at_once(
    world: Hoviyat,
    acme_account: AcmeClient,
    app_client: TestClient,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    leaf, _ = obtain(acme_account, web, fresh_names(dns))
    acme_account.post(
        acme_account.url("revokeCert"),
        {"certificate": b64url(leaf.public_bytes(Encoding.DER)), "reason": 4},
    )
    info = renewal_info(app_client, acme_account, cert_id_of(leaf))
    assert info.status_code == 200, info.text
    end = datetime.fromisoformat(info.json()["suggestedWindow"]["end"].replace("Z", "+00:00"))
    assert end <= datetime.now(UTC)


def test_directory_names_renewal_info(world: Hoviyat, acme_client: AcmeClient) -> None:
    assert acme_client.url("renewalInfo").endswith("/acme/infrastructure/renewal-info")
