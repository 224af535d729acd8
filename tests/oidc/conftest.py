"""OIDC fixtures: a registered relying party and people from the synthetic registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import RelyingParty, register_rp

from verifiers.registry.base import LegalEntity, Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture
def rp(hoviyat_app: FastAPI) -> RelyingParty:
    return register_rp(hoviyat_app, "rp-tax")


@pytest.fixture(scope="session")
def registry(synthetic_registry_path: Path) -> Iterator[SyntheticRegistry]:
    opened = SyntheticRegistry(synthetic_registry_path)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def citizen(registry: SyntheticRegistry) -> Person:
    for person, mobiles in registry.iter_persons(200):
        if person.alive and mobiles:
            return person
    raise AssertionError("the synthetic registry has no living person with a mobile")


@pytest.fixture(scope="session")
def representative(registry: SyntheticRegistry) -> tuple[Person, LegalEntity]:
    for entity in registry.iter_entities(300):
        if entity.status != "active":
            continue
        for rep in entity.representatives:
            person = registry.person(rep.national_code)
            if rep.is_current(date.today()) and person is not None and person.alive:
                return person, entity
    raise AssertionError("the synthetic registry has no current representative")


@pytest.fixture
def asgi_browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    """The app over its ASGI transport, redirects left for the test to read."""
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as client:
        yield client
