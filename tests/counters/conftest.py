"""Service counter fixtures: the real app over ASGI, two offices, their people, a citizen."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))

from counter_support import Scene, build_scene

from idp.pki.service import build_pki as build_hoviyat_pki
from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture(scope="session")
def registry_people(synthetic_registry_path: Path) -> list[tuple[Person, str]]:
    """Living people with a mobile the registry binds to them: staff, citizens, a stranger."""
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        found = [
            (person, mobiles[0])
            for person, mobiles in registry.iter_persons(400)
            if person.alive and mobiles
        ]
        entities = [e.national_id for e in registry.iter_entities(200) if e.status == "active"]
    finally:
        registry.close()
    assert len(found) >= 8 and len(entities) >= 2
    return found[:8]


@pytest.fixture(scope="session")
def active_entities(synthetic_registry_path: Path) -> list[str]:
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        return [e.national_id for e in registry.iter_entities(200) if e.status == "active"][:2]
    finally:
        registry.close()


@pytest.fixture
def scene(
    hoviyat_app: FastAPI, registry_people: list[tuple[Person, str]], active_entities: list[str]
) -> Scene:
    return build_scene(hoviyat_app, registry_people, active_entities)


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
    """The CA hierarchy made, as 'hoviyat ca init' makes it: attestations can be signed."""
    monkeypatch.setenv("HOVIYAT_CA_PASSPHRASE", "counter tests only")
    hoviyat = hoviyat_app.state.hoviyat
    build_hoviyat_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    ).hierarchy.init()
    return hoviyat_app
