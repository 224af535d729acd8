"""Certificates console fixtures: the real app over ASGI, its CA made, people to sign in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ca"))

from idp.pki.service import build_pki
from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture(scope="session")
def people(synthetic_registry_path: Path) -> list[Person]:
    """Four living people with a mobile: two CA operators, an outsider, a certificate holder."""
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        found = [
            person for person, mobiles in registry.iter_persons(300) if person.alive and mobiles
        ]
    finally:
        registry.close()
    assert len(found) >= 4, "the synthetic registry has too few living people with a mobile"
    return found[:4]


def _browser(app: FastAPI) -> Iterator[TestClient]:
    issuer = app.state.hoviyat.settings.issuer
    with TestClient(app, base_url=issuer, follow_redirects=False) as client:
        yield client


@pytest.fixture
def browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    yield from _browser(hoviyat_app)


@pytest.fixture
def other_browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    yield from _browser(hoviyat_app)


@pytest.fixture
def ca_ready(monkeypatch: pytest.MonkeyPatch, hoviyat_app: FastAPI) -> FastAPI:
    """The CA hierarchy made, as 'hoviyat ca init' makes it."""
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "console certificates tests only")
    hoviyat = hoviyat_app.state.hoviyat
    build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    ).hierarchy.init()
    return hoviyat_app
