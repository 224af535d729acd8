"""ACME fixtures: the whole app over the ASGI transport (TestClient) on SQLite and
PostgreSQL, an EAB key for an active legal entity of the synthetic registry,
and a registered account (:mod:`acme_client`, a real client).

Everything is real: ``hoviyat init``'s own code prepares the data directory
(tests/fixtures_app.py), keys are made by the same code as ``hoviyat acme eab
create``, and every request is a signed JWS over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from acme_cast import ACME_CA, ACME_SERVICE, active_entity_ids
from acme_client import AccountKey, AcmeClient, Eab
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import col, select

from idp.acme import eab
from idp.acme.paths import AcmePaths
from idp.app import create_app
from idp.audit.log import append
from idp.context import Hoviyat
from idp.settings import Settings
from idp.storage.acme_accounts import AcmeAccountRow
from idp.storage.acme_eab import AcmeEabKey
from idp.storage.models import AuditEntry


@pytest.fixture
def acme_entity(synthetic_registry_path: Path) -> str:
    return active_entity_ids(synthetic_registry_path)[0]


@pytest.fixture
def acme_paths(hoviyat_settings: Settings) -> AcmePaths:
    return AcmePaths(base=hoviyat_settings.issuer.rstrip("/"), ca=ACME_CA)


@pytest.fixture
def hoviyat(hoviyat_app: FastAPI) -> Hoviyat:
    value: Hoviyat = hoviyat_app.state.hoviyat
    return value


def create_eab(hoviyat: Hoviyat, national_id: str, service_code: str = ACME_SERVICE) -> Eab:
    """A key made as ``hoviyat acme eab create`` makes it (registry check, audit entry)."""
    canonical = eab.check_request(hoviyat.registries, hoviyat.policies, national_id, service_code)
    with hoviyat.db.session() as session:
        created, row = eab.create(
            session,
            hoviyat.secrets,
            national_id=canonical,
            service_code=service_code,
            created_by="test",
        )
        event = eab.key_event(
            hoviyat.secrets,
            hoviyat.policies,
            row,
            "create",
            actor_type="administrator",
            actor_id="test",
        )
        append(session, event)
    return Eab(created.kid, created.hmac_key, created.national_id, created.service_code)


@pytest.fixture
def make_eab(hoviyat: Hoviyat, acme_entity: str) -> Callable[[], Eab]:
    return lambda: create_eab(hoviyat, acme_entity)


@pytest.fixture
def eab_key(make_eab: Callable[[], Eab]) -> Eab:
    return make_eab()


@pytest.fixture
def make_client(app_client: TestClient, acme_paths: AcmePaths) -> Callable[..., AcmeClient]:
    def make(alg: str = "ES256") -> AcmeClient:
        return AcmeClient(app_client, acme_paths.directory, AccountKey.generate(alg))

    return make


@pytest.fixture
def acme_client(make_client: Callable[..., AcmeClient]) -> AcmeClient:
    """A client with a fresh ES256 key and no account yet."""
    return make_client()


@pytest.fixture
def acme_account(acme_client: AcmeClient, eab_key: Eab) -> AcmeClient:
    """A client whose account is registered (bound to ``eab_key``)."""
    response = acme_client.new_account(
        eab_key.kid, eab_key.hmac_key, contact=["mailto:ops@tax.example.com"]
    )
    assert response.status_code == 201, response.text
    return acme_client


def snapshot(hoviyat: Hoviyat) -> dict[str, object]:
    """What a refused request must not change: accounts, EAB keys, audit entries."""
    with hoviyat.db.read() as session:
        accounts = [
            (row.id, row.status, row.jwk_thumbprint, tuple(row.contact))
            for row in session.exec(select(AcmeAccountRow).order_by(col(AcmeAccountRow.id)))
        ]
        keys = [
            (row.kid, row.account_id, row.revoked_at)
            for row in session.exec(select(AcmeEabKey).order_by(col(AcmeEabKey.kid)))
        ]
        audit = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(col(AuditEntry.event_type).like("acme%"))
        ).one()
    return {"accounts": accounts, "eab_keys": keys, "acme_audit_entries": audit}


@pytest.fixture
def state(hoviyat: Hoviyat) -> Callable[[], dict[str, object]]:
    """``before = state(); <refused request>; assert state() == before``."""
    return lambda: snapshot(hoviyat)


@pytest.fixture
def other_app(hoviyat_settings: Settings, hoviyat_app: FastAPI) -> Iterator[TestClient]:
    """A second application (its own engine, committer and workers' state) over the same
    database and secrets: another worker process or host, as far as ACME can tell."""
    app = create_app(hoviyat_settings)
    with TestClient(app, base_url=hoviyat_settings.issuer) as client:
        yield client
    app.state.hoviyat.close()
