"""The order side over HTTP, end to end (RFC 8555 §7.4-7.6), on SQLite and PostgreSQL.

The whole app over ASGI, a real ACME client (:mod:`acme_client`) whose account is
bound by EAB, a CA hierarchy made as ``hoviyat ca init`` makes it, and the
validators dialling a loopback DNS server and http-01 responder (ports 18200-18299).
The happy path ends in ``openssl verify`` and pkilint; the rest is the attacker's.
"""

# The fixtures come from orders_http_support (a test module, not a conftest of its own):
# their names are the parameters that use them.
# ruff: noqa: F811

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
from acme_client import AccountKey, AcmeClient, b64url
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwk
from orders_http_support import (  # noqa: F401  (fixtures)
    answer_http01,
    ca_root,
    der_b64,
    dns,
    finalize,
    fresh_name,
    hoviyat_settings,
    issued,
    key_authorization,
    new_order,
    ordered_and_proven,
    poll,
    problem,
    web,
    world,
)
from orders_support import csr_der, openssl_verify, pkilint_serverauth, write_pem
from responders import Http01Responder, LoopbackDns
from sqlmodel import select

from ca.serials import serial_hex
from idp.context import Hoviyat
from idp.storage.certificates import CertificateRecord
from idp.storage.models import AuditEntry

# --- the happy path ---------------------------------------------------------------------


def test_order_validate_finalize_download_revoke_end_to_end(
    world: Hoviyat,
    acme_account: AcmeClient,
    web: Http01Responder,
    dns: LoopbackDns,
    ca_root: x509.Certificate,
    tmp_path: Path,
) -> None:
    names = (fresh_name(dns, "www"), fresh_name(dns, "api"))
    response = new_order(acme_account, *names)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending" and order["profile"] == "tls-server"
    assert [i["value"] for i in order["identifiers"]] == list(names)
    assert response.headers["Replay-Nonce"]
    order_url = response.headers["Location"]
    for authz_url in order["authorizations"]:
        authz = acme_account.post_as_get(authz_url).json()
        assert sorted(c["type"] for c in authz["challenges"]) == [
            "dns-01",
            "http-01",
            "tls-alpn-01",
        ]
        assert answer_http01(acme_account, web, authz_url)["status"] == "valid"
    ready = poll(acme_account, order_url, ("ready", "invalid"))
    assert ready["status"] == "ready"

    listed = acme_account.post_as_get(acme_account.account_url + "/orders").json()
    assert order_url in listed["orders"]

    done, _ = finalize(acme_account, {"url": order_url, **ready}, names)
    assert done["status"] == "valid" and done["certificate"]
    download = acme_account.post_as_get(done["certificate"])
    assert download.headers["Content-Type"].startswith("application/pem-certificate-chain")
    chain = x509.load_pem_x509_certificates(download.text.encode())
    assert len(chain) == 2 and chain[1].subject != ca_root.subject  # no root served
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    verified = openssl_verify(tmp_path, download.text, ca_root)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    linted = pkilint_serverauth(write_pem(tmp_path / "leaf.pem", [chain[0]]))
    assert linted.returncode == 0, linted.stdout + linted.stderr

    der = base64.urlsafe_b64decode(der_b64(chain[0]) + "==")
    revoked = acme_account.post(
        acme_account.url("revokeCert"), {"certificate": der_b64(chain[0]), "reason": 4}
    )
    assert revoked.status_code == 200
    with world.db.read() as session:
        record = session.get(CertificateRecord, serial_hex(chain[0].serial_number))
    assert record is not None and record.status == "revoked" and record.der == der
    again = acme_account.post(
        acme_account.url("revokeCert"), {"certificate": der_b64(chain[0])}, check=False
    )
    assert (again.status_code, problem(again)) == (400, "alreadyRevoked")
    with world.db.read() as session:
        kinds = {e.event_type for e in session.exec(select(AuditEntry))}
    assert {
        "acme_order_created",
        "acme_order_finalized",
        "certificate_issued",
        "certificate_revoked",
    } <= kinds


def test_wildcard_is_proven_with_dns01_only(
    world: Hoviyat, acme_account: AcmeClient, dns: LoopbackDns
) -> None:
    base = fresh_name(dns, "apps")
    response = new_order(acme_account, f"*.{base}")
    assert response.status_code == 201, response.text
    authz_url = response.json()["authorizations"][0]
    authz = acme_account.post_as_get(authz_url).json()
    assert authz["wildcard"] is True and authz["identifier"]["value"] == base
    assert [c["type"] for c in authz["challenges"]] == ["dns-01"]  # no http-01 to answer
    challenge = authz["challenges"][0]
    digest = hashlib.sha256(key_authorization(acme_account, challenge["token"]).encode()).digest()
    dns.set(f"_acme-challenge.{base}", "TXT", b64url(digest))
    acme_account.post(challenge["url"], {})
    assert poll(acme_account, authz_url, ("valid", "invalid"))["status"] == "valid"


# --- the attacker's side ----------------------------------------------------------------


def test_attack_name_outside_the_entity_policy_is_rejected_and_audited(
    world: Hoviyat, acme_account: AcmeClient
) -> None:
    response = new_order(acme_account, "www.tax.example.com", "www.bank.example.net")
    assert (response.status_code, problem(response)) == (400, "rejectedIdentifier")
    subproblems = response.json()["subproblems"]
    assert [s["identifier"]["value"] for s in subproblems] == ["www.bank.example.net"]
    with world.db.read() as session:
        refused = list(
            session.exec(select(AuditEntry).where(AuditEntry.event_type == "acme_order_refused"))
        )
        created = list(
            session.exec(select(AuditEntry).where(AuditEntry.event_type == "acme_order_created"))
        )
    assert len(refused) == 1 and created == []
    assert refused[0].detail["names"] == ["www.bank.example.net"]


def test_attack_ip_identifier_is_unsupported(world: Hoviyat, acme_account: AcmeClient) -> None:
    response = acme_account.post(
        acme_account.url("newOrder"),
        {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]},
        check=False,
    )
    assert problem(response) == "unsupportedIdentifier"


def test_attack_wrong_key_authorization_fails_the_challenge_and_the_order(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    name = fresh_name(dns)
    response = new_order(acme_account, name)
    order_url, authz_url = response.headers["Location"], response.json()["authorizations"][0]
    authz = acme_account.post_as_get(authz_url).json()
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    # The key authorization of another account's key: what an attacker who saw the
    # token, but holds not the account key, can serve.
    web.serve(challenge["token"], f"{challenge['token']}.{AccountKey.generate().thumbprint}")
    acme_account.post(challenge["url"], {})
    authz = poll(acme_account, authz_url, ("valid", "invalid"))
    assert authz["status"] == "invalid"
    assert authz["challenges"][0]["error"]["type"].endswith((":incorrectResponse", ":unauthorized"))
    order = poll(acme_account, order_url, ("invalid", "ready"))
    assert order["status"] == "invalid"
    # Answering again changes nothing: the challenge was decided.
    again = acme_account.post(challenge["url"], {}).json()
    assert again["status"] == "invalid"


def test_attack_another_account_cannot_see_finalize_download_or_revoke(
    world: Hoviyat,
    acme_account: AcmeClient,
    make_client: Any,
    make_eab: Any,
    web: Http01Responder,
    dns: LoopbackDns,
) -> None:
    done, _, name = issued(acme_account, web, dns)
    thief = make_client()
    eab = make_eab()
    assert thief.new_account(eab.kid, eab.hmac_key).status_code == 201
    order_url = next(
        u for u in acme_account.post_as_get(acme_account.account_url + "/orders").json()["orders"]
    )
    for url in (order_url, done["authorizations"][0], done["certificate"]):
        response = thief.post_as_get(url, check=False)
        assert response.status_code == 404, (url, response.text)
    der, _ = csr_der((name,))
    stolen = thief.post(done["finalize"], {"csr": b64url(der)}, check=False)
    assert stolen.status_code == 404
    listing = thief.post_as_get(acme_account.account_url + "/orders", check=False)
    assert (listing.status_code, problem(listing)) == (403, "unauthorized")
    pem = acme_account.post_as_get(done["certificate"]).text
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    revoke = thief.post(thief.url("revokeCert"), {"certificate": der_b64(leaf)}, check=False)
    assert (revoke.status_code, problem(revoke)) == (403, "unauthorized")
    with world.db.read() as session:
        record = session.exec(
            select(CertificateRecord).where(CertificateRecord.profile == "tls-server")
        ).one()
    assert record.status == "issued"


def test_revocation_by_the_certificate_key_and_not_by_an_unrelated_key(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    done, key, _ = issued(acme_account, web, dns)
    leaf = x509.load_pem_x509_certificates(
        acme_account.post_as_get(done["certificate"]).text.encode()
    )[0]
    url = acme_account.url("revokeCert")
    payload = {"certificate": der_b64(leaf), "reason": 1}

    def signed_by(signer: AccountKey) -> httpx.Response:
        body = acme_account.sign(url, payload, use_jwk=True, key=signer)
        return acme_account.send(url, body)

    unrelated = signed_by(
        AccountKey("ES256", jwk.ECKey.import_key(ec.generate_private_key(ec.SECP256R1())))
    )
    assert (unrelated.status_code, problem(unrelated)) == (403, "unauthorized")
    bad_reason = acme_account.post(url, {**payload, "reason": 6}, check=False)  # certificateHold
    assert (bad_reason.status_code, problem(bad_reason)) == (400, "badRevocationReason")
    by_key = signed_by(AccountKey("ES256", jwk.ECKey.import_key(key)))
    assert by_key.status_code == 200, by_key.text
    with world.db.read() as session:
        record = session.exec(
            select(CertificateRecord).where(CertificateRecord.profile == "tls-server")
        ).one()
    assert (record.status, record.revocation_reason) == ("revoked", "keyCompromise")


def test_attack_finalize_with_extra_name_over_http_is_bad_csr(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    name = fresh_name(dns)
    order = ordered_and_proven(acme_account, web, name)
    der, _ = csr_der((name, "www.bank.example.net"))
    response = acme_account.post(order["finalize"], {"csr": b64url(der)}, check=False)
    assert (response.status_code, problem(response)) == (400, "badCSR")
    assert acme_account.post_as_get(order["url"]).json()["status"] == "ready"


def test_attack_http01_for_the_base_name_does_not_prove_the_wildcard(
    world: Hoviyat, acme_account: AcmeClient, web: Http01Responder, dns: LoopbackDns
) -> None:
    """Serving a file on the host proves the host, not every name under it (§7.1.3)."""
    base = fresh_name(dns, "apps")
    response = new_order(acme_account, f"*.{base}", base)
    order_url = response.headers["Location"]
    wildcard_url, plain_url = response.json()["authorizations"]
    assert answer_http01(acme_account, web, plain_url)["status"] == "valid"
    wildcard = acme_account.post_as_get(wildcard_url).json()
    assert wildcard["status"] == "pending"
    assert [c["type"] for c in wildcard["challenges"]] == ["dns-01"]
    assert acme_account.post_as_get(order_url).json()["status"] == "pending"
    # Nor does a later order for the wildcard reuse the host's valid authorization.
    again = new_order(acme_account, f"*.{base}")
    assert again.json()["status"] == "pending"
    assert again.json()["authorizations"] != [plain_url]
