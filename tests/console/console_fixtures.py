"""Fixtures every console test folder shares (console, console_audit, console_certificates,
counters): people from the synthetic registry, browsers on the app's ASGI transport, and
the CA made for the tests that sign. A folder's conftest imports the ones it uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.pki.service import build_pki
from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture(scope="session")
def people(synthetic_registry_path: Path) -> list[Person]:
    """Four living people with a mobile (each folder gives them its own parts)."""
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        found = [p for p, mobiles in registry.iter_persons(300) if p.alive and mobiles]
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
    """A browser on the app's ASGI transport; redirects left for the test to follow."""
    yield from _browser(hoviyat_app)


@pytest.fixture
def other_browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    """A second person's browser (its own cookies)."""
    yield from _browser(hoviyat_app)


@pytest.fixture
def ca_ready(monkeypatch: pytest.MonkeyPatch, hoviyat_app: FastAPI) -> FastAPI:
    """The CA hierarchy made, as 'hoviyat ca init' makes it."""
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "console tests only")
    hoviyat = hoviyat_app.state.hoviyat
    build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    ).hierarchy.init()
    return hoviyat_app
