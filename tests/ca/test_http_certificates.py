"""``POST /v1/certificates``, ``GET /v1/certificates/{serial}`` and ``GET /ca/{name}.crt``
through the real app (ASGI), with tokens from its own ``/token`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pki_helpers import make_csr, openssl_verify
from sqlalchemy import func
from sqlmodel import select

from ca.keys import open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.settings import Settings
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database


@pytest.fixture
def ca_initialised(
    hoviyat_settings: Settings, init_report: dict, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "http test passphrase")
    db = Database(hoviyat_settings.resolved_database_url)
    Hierarchy(
        db, open_keystore(CASettings(), hoviyat_settings.data_dir), hoviyat_settings.issuer
    ).init()
    yield db
    db.dispose()


def certificate_count(db: Database) -> int:
    with db.session() as session:
        return int(session.exec(select(func.count()).select_from(CertificateRecord)).one())


def person_body(national_code: str, csr: bytes | None = None) -> dict:
    return {
        "csr": (csr or make_csr()[0]).decode(),
        "profile": "person-authentication",
        "subject": {"national_code": national_code},
        "reason": "citizen asked at the counter",
    }


def test_issue_then_read_back(
    ca_initialised: Database,
    app_client: TestClient,
    admin_token: str,
    living_person: str,
    tmp_path: Path,
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    response = app_client.post("/v1/certificates", json=person_body(living_person), headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/certificates/{body['serial']}"
    certificate = x509.load_pem_x509_certificate(body["certificate"].encode())
    chain = tuple(x509.load_pem_x509_certificate(c.encode()) for c in body["chain"])
    assert openssl_verify(tmp_path, certificate, chain, "sslclient").returncode == 0

    read = app_client.get(f"/v1/certificates/{body['serial'].upper()}", headers=auth)
    assert read.status_code == 200
    assert read.json()["status"] == "issued"
    assert read.json()["certificate"] == body["certificate"]
    assert read.json()["tracking_code"] == body["tracking_code"]

    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ca_url = next(
        d.access_location.value for d in aia if d.access_method.dotted_string.endswith(".2")
    )
    published = app_client.get(urlparse(ca_url).path)
    assert published.status_code == 200
    assert published.headers["content-type"] == "application/pkix-cert"
    assert published.content == chain[0].public_bytes(Encoding.DER)


def test_tls_certificate_for_approved_names(
    ca_initialised: Database, app_client: TestClient, admin_token: str
) -> None:
    csr, _ = make_csr(dns=("api.agency.gov.ir",))
    response = app_client.post(
        "/v1/certificates",
        json={
            "csr": csr.decode(),
            "profile": "tls-server",
            "subject": {"dns_names": ["api.agency.gov.ir", "www.agency.gov.ir"]},
        },
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 201, response.text
    certificate = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.agency.gov.ir", "www.agency.gov.ir"]


def test_refusals_are_problems_and_write_nothing(
    ca_initialised: Database, app_client: TestClient, admin_token: str, living_person: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    cases = [
        ({**person_body(living_person), "csr": "garbage"}, 400, "csr-malformed"),
        (person_body("0499370898"), 400, "invalid-national-code"),
        (person_body(living_person, make_csr(dns=("x.example.ir",))[0]), 400, "csr-san-refused"),
        ({**person_body(living_person), "profile": "nope"}, 400, "unknown-profile"),
    ]
    for body, status, slug in cases:
        response = app_client.post("/v1/certificates", json=body, headers=auth)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + slug)
        assert response.json()["detail"]
    assert certificate_count(ca_initialised) == 0


def test_only_operators_and_admins_may_issue(
    ca_initialised: Database, app_client: TestClient, bank_token: str, living_person: str
) -> None:
    anonymous = app_client.post("/v1/certificates", json=person_body(living_person))
    assert anonymous.status_code == 401
    bank = app_client.post(
        "/v1/certificates",
        json=person_body(living_person),
        headers={"Authorization": f"Bearer {bank_token}"},
    )
    assert bank.status_code == 403
    assert bank.json()["type"].endswith("/role-required")
    assert certificate_count(ca_initialised) == 0


def test_unknown_and_malformed_serials(
    ca_initialised: Database, app_client: TestClient, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert app_client.get("/v1/certificates/0a1b2c", headers=auth).status_code == 404
    assert app_client.get("/v1/certificates/not-hex", headers=auth).status_code == 400
    assert app_client.get("/ca/nobody.crt").status_code == 404


def test_ca_certificates_are_served_without_keys_and_issuance_says_why_not(
    ca_initialised: Database,
    app_client: TestClient,
    admin_token: str,
    living_person: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The passphrase is gone (say, an operator forgot the secret): reading still works,
    # signing answers 503 with Retry-After instead of failing with a 500.
    monkeypatch.delenv("HOVIYAT_CA_PASSPHRASE")
    published = app_client.get("/ca/persons.crt")
    assert published.status_code == 200
    response = app_client.post(
        "/v1/certificates",
        json=person_body(living_person),
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/ca-keys-unavailable")
    assert response.headers["retry-after"] == "30"
    assert certificate_count(ca_initialised) == 0
