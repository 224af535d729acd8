"""A forged TLS client certificate (RFC 8705 §2.1) at /token is audited as a refusal.

Over the app's ASGI transport, the certificate forwarded by the trusted proxy as
tests/oidc/test_mtls.py sends it; SQLite and PostgreSQL. The refusal names the
client the request claimed; the certificate itself is not written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mtls_support import (
    CaTemplate,
    ClientCertificate,
    active_entities,
    issue_client_certificate,
    make_template,
    pki_on,
    self_signed,
)
from sqlmodel import col, select

from idp.app import create_app
from idp.clients import create_client
from idp.oidc.registration import oidc_attributes
from idp.pki.registration import Pki
from idp.settings import Settings
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

PROXY = ("10.20.30.40", 44321)
HEADER = "X-Client-Certificate"
SERVICE = "demo-bank-kyc"


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory: pytest.TempPathFactory) -> CaTemplate:
    return make_template(tmp_path_factory.mktemp("mtls-refused-ca"))


@pytest.fixture
def pki(db: Database, ca_template: CaTemplate, synthetic_registry_path: Path) -> Pki:
    return pki_on(db, ca_template, synthetic_registry_path)


@pytest.fixture
def mtls_app(
    hoviyat_settings: Settings, init_report: dict[str, Any], pki: Pki
) -> Iterator[FastAPI]:
    app = create_app(hoviyat_settings.model_copy(update={"trusted_proxies": [PROXY[0]]}))
    yield app
    app.state.hoviyat.close()


@pytest.fixture
def proxy(mtls_app: FastAPI) -> Iterator[TestClient]:
    issuer = mtls_app.state.hoviyat.settings.issuer
    with TestClient(mtls_app, base_url=issuer, client=PROXY, follow_redirects=False) as client:
        yield client


@pytest.fixture
def agency_cert(pki: Pki, synthetic_registry_path: Path) -> ClientCertificate:
    (entity,) = active_entities(synthetic_registry_path, 1)
    return issue_client_certificate(pki, entity, "tax back office")


def _register(app: FastAPI, client_id: str, subject_dn: str) -> None:
    attributes = oidc_attributes(
        redirect_uris=[],
        post_logout_redirect_uris=[],
        grant_types=[],
        auth_method="tls_client_auth",
        id_token_alg="ES256",
        sector_identifier=None,
        jwks=None,
        tls_client_auth_subject_dn=subject_dn,
        tls_client_certificate_bound_access_tokens=True,
    )
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name=f"mTLS {client_id}",
            service_code=SERVICE,
            client_id=client_id,
            with_secret=False,
            **attributes,
        )


def test_attack_certificate_from_another_ca_is_audited_as_refused_without_the_certificate(
    mtls_app: FastAPI, proxy: TestClient, agency_cert: ClientCertificate
) -> None:
    _register(mtls_app, "tax-mtls", agency_cert.subject_dn)
    forged = self_signed(like=agency_cert.certificate)
    answer = proxy.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "tax-mtls"},
        headers={HEADER: forged.header},
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
    with mtls_app.state.hoviyat.db.read() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    (entry,) = [e for e in entries if e.event_type == "client_authentication"]
    assert entry.actor_id == "tax-mtls" and entry.outcome == "refused"
    assert entry.detail["method"] == "tls_client_auth_or_none"
    row = json.dumps(entry.model_dump(mode="json"))
    assert forged.header not in row
    assert forged.header.split("%0A")[1][:40] not in row  # not even a piece of the PEM body
