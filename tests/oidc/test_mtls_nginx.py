"""Mutual TLS end to end (RFC 8705, issue 14): a client's TLS certificate through a real
nginx with deploy/nginx/hoviyat.conf in front of a real ``hoviyat serve``.

Everything as an operator does it: ``hoviyat init``, ``hoviyat ca init``, the
client's certificate by ``hoviyat ca issue --profile oauth-client`` for an
active legal entity, the client by ``hoviyat clients create --auth-method
tls_client_auth``. The client then holds the certificate's key in the TLS
handshake with nginx, which forwards the certificate; nothing else reaches
Hoviyat (served_mtls.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from mtls_support import active_entities
from served_mtls import (
    NGINX,
    Served,
    a_person,
    claims_of,
    client_certificate,
    run_cli,
    served_behind_nginx,
    tls,
)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (/usr/sbin/nginx)")


@pytest.fixture
def served(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> Iterator[Served]:
    with served_behind_nginx(tmp_path, database_url, synthetic_registry_path) as running:
        yield running


def test_tls_client_auth_and_bound_token_through_nginx(
    served: Served, synthetic_registry_path: Path
) -> None:
    entity = active_entities(synthetic_registry_path, 1)[0]
    cert_path, key_path, leaf = client_certificate(served, entity)
    created = json.loads(
        run_cli(
            served.env,
            "clients",
            "create",
            "--name",
            "Tax back office (mTLS)",
            "--service",
            "demo-bank-kyc",
            "--auth-method",
            "tls_client_auth",
            "--tls-client-auth-subject-dn",
            leaf.subject.rfc4514_string(),
            "--tls-certificate-bound",
            "--json",
        )
    )
    assert created["client_secret"] is None  # the certificate is the credential
    client_id = created["client_id"]
    form = {"grant_type": "client_credentials", "client_id": client_id}
    person = a_person(synthetic_registry_path)

    with httpx.Client(base_url=served.https, verify=tls((cert_path, key_path))) as agency:
        answer = agency.post("/token", data=form)
        assert answer.status_code == 200, answer.text
        access_token = answer.json()["access_token"]
        digest = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).digest()
        x5t = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert claims_of(access_token)["cnf"] == {"x5t#S256": x5t}
        bearer = {"Authorization": f"Bearer {access_token}"}
        verified = agency.post("/v1/persons/verify", json=person, headers=bearer)
        assert verified.status_code == 200, verified.text

    # The token without the key: a TLS connection that presents no certificate.
    with httpx.Client(base_url=served.https, verify=tls()) as thief:
        stolen = thief.post("/v1/persons/verify", json=person, headers=bearer)
        assert stolen.status_code == 401, stolen.text
        assert 'error="invalid_token"' in stolen.headers["www-authenticate"]
        # ... nor a forged header through nginx: it is replaced (here: dropped).
        pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
        forged = {"X-Client-Certificate": quote(pem, safe="")}
        assert thief.post("/token", data=form, headers=forged).status_code == 401
        assert (
            thief.post("/v1/persons/verify", json=person, headers={**bearer, **forged}).status_code
            == 401
        )


def test_attack_header_from_untrusted_peer(served: Served, synthetic_registry_path: Path) -> None:
    """Straight to hoviyat serve, from an address that is not the proxy, with the header
    nginx would have set: not believed."""
    entity = active_entities(synthetic_registry_path, 1)[0]
    _cert, _key, leaf = client_certificate(served, entity)
    created = json.loads(
        run_cli(
            served.env,
            "clients",
            "create",
            "--name",
            "Tax back office (mTLS)",
            "--service",
            "demo-bank-kyc",
            "--auth-method",
            "tls_client_auth",
            "--tls-client-auth-subject-dn",
            leaf.subject.rfc4514_string(),
            "--json",
        )
    )
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    transport = httpx.HTTPTransport(local_address="127.0.0.9")  # loopback, not the proxy
    with httpx.Client(base_url=served.direct, transport=transport) as attacker:
        answer = attacker.post(
            "/token",
            data={"grant_type": "client_credentials", "client_id": created["client_id"]},
            headers={"X-Client-Certificate": quote(pem, safe=""), "X-Forwarded-For": "127.0.0.1"},
        )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
