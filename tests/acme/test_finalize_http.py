"""Finalize over HTTP (RFC 8555 §7.4), on SQLite and PostgreSQL: the CA keys unavailable
is a 503 with Retry-After that leaves the order ready and recovers; the order's profile
(draft-ietf-acme-profiles) decides the certificate; ``replaces`` (RFC 9773 §5) names a
certificate of the same account, once."""

# The fixtures come from orders_http_support (a test module, not a conftest of its own):
# their names are the parameters that use them.
# ruff: noqa: F811

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from acme_client import AcmeClient, b64url
from cryptography import x509
from fastapi.testclient import TestClient
from orders_http_support import (  # noqa: F401  (fixtures)
    answer_http01,
    ca_root,
    dns,
    fresh_name,
    hoviyat_settings,
    issued,
    new_order,
    ordered_and_proven,
    poll,
    problem,
    web,
    world,
)
from orders_support import csr_der
from responders import Http01Responder, LoopbackDns
from sqlalchemy import func
from sqlmodel import select

from idp.acme.rfc9773 import cert_id_of
from idp.context import Hoviyat
from idp.storage.certificates import CertificateRecord


def _certificate_count(hoviyat: Hoviyat) -> int:
    with hoviyat.db.read() as session:
        return int(session.exec(select(func.count()).select_from(CertificateRecord)).one())


def _leaf(client: AcmeClient, done: dict[str, Any]) -> x509.Certificate:
    pem = client.post_as_get(done["certificate"]).text
    return x509.load_pem_x509_certificates(pem.encode())[0]


def test_ca_keys_unavailable_is_503_with_retry_after_and_recovers(
    world: Hoviyat,
    acme_account: AcmeClient,
    web: Http01Responder,
    dns: LoopbackDns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = fresh_name(dns)
    order = ordered_and_proven(acme_account, web, name)
    der, _ = csr_der((name,))
    monkeypatch.delenv("HOVIYAT_CA_PASSPHRASE")  # the operator has not unlocked the keys
    refused = acme_account.post(order["finalize"], {"csr": b64url(der)}, check=False)
    assert (refused.status_code, problem(refused)) == (503, "serverInternal")
    assert int(refused.headers["Retry-After"]) > 0
    assert acme_account.post_as_get(order["url"]).json()["status"] == "ready"
    assert _certificate_count(world) == 0
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "acme orders test passphrase")
    acme_account.post(order["finalize"], {"csr": b64url(der)})
    assert poll(acme_account, order["url"], ("valid", "invalid"))["status"] == "valid"
    assert _certificate_count(world) == 1


def test_order_profile_decides_the_certificate(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    name = fresh_name(dns)
    response = new_order(acme_account, name, profile="tls-server-short")
    assert response.status_code == 201, response.text
    assert response.json()["profile"] == "tls-server-short"
    for authz_url in response.json()["authorizations"]:
        answer_http01(acme_account, web, authz_url)
    order = {"url": response.headers["Location"], **response.json()}
    der, _ = csr_der((name,))
    acme_account.post(order["finalize"], {"csr": b64url(der)})
    done = poll(acme_account, order["url"], ("valid", "invalid"))
    leaf = _leaf(acme_account, done)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= timedelta(days=7, seconds=1)
    unknown = new_order(acme_account, name, profile="person-signing")
    assert (unknown.status_code, problem(unknown)) == (400, "invalidProfile")


def test_attack_replaces_another_account_or_twice_is_refused(
    world: Hoviyat,
    acme_account: AcmeClient,
    make_client: Any,
    make_eab: Any,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    done, _, name = issued(acme_account, web, dns)
    cert_id = cert_id_of(_leaf(acme_account, done))
    renewal = new_order(acme_account, name, replaces=cert_id)
    assert renewal.status_code == 201, renewal.text
    assert renewal.json()["replaces"] == cert_id
    twice = new_order(acme_account, name, replaces=cert_id)
    assert (twice.status_code, problem(twice)) == (409, "alreadyReplaced")
    thief = make_client()
    eab = make_eab()
    thief.new_account(eab.kid, eab.hmac_key)
    stolen = new_order(thief, name, replaces=cert_id)
    assert (stolen.status_code, problem(stolen)) == (403, "unauthorized")
    garbage = new_order(acme_account, name, replaces="not-a-cert-id")
    assert (garbage.status_code, problem(garbage)) == (400, "malformed")


def test_attack_finalize_on_two_workers_at_once_issues_one_certificate(
    world: Hoviyat,
    acme_account: AcmeClient,
    other_app: TestClient,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    name = fresh_name(dns)
    order = ordered_and_proven(acme_account, web, name)
    second = AcmeClient(
        other_app,
        acme_account.directory_url,
        acme_account.key,
        account_url=acme_account.account_url,
    )
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def finalize_on(client: AcmeClient) -> None:
        der, _ = csr_der((name,))
        body = client.sign(order["finalize"], {"csr": b64url(der)})
        barrier.wait()
        response = client.send(order["finalize"], body)
        answers.append(
            (
                response.status_code,
                problem(response) if response.status_code >= 400 else response.json()["status"],
            )
        )

    threads = [threading.Thread(target=finalize_on, args=(c,)) for c in (acme_account, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [(200, "valid"), (403, "orderNotReady")]
    assert _certificate_count(world) == 1
