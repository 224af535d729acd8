"""Console fixtures: the real app over ASGI, and people from the synthetic registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture(scope="session")
def people(synthetic_registry_path: Path) -> list[Person]:
    """Four living people with a mobile: enough for two admins, an auditor and a stranger."""
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        found = [
            person for person, mobiles in registry.iter_persons(300) if person.alive and mobiles
        ]
    finally:
        registry.close()
    assert len(found) >= 4, "the synthetic registry has too few living people with a mobile"
    return found[:4]


@pytest.fixture
def browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    """A browser on the app's ASGI transport; redirects left for the test to follow."""
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as client:
        yield client


@pytest.fixture
def other_browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as client:
        yield client
