"""Fixtures for the auditors' console pages: the real app, a browser, registry people."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry

# The console's sign-in helpers (tests/console/console_support.py) drive the real OIDC flow.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))


@pytest.fixture(scope="session")
def people(synthetic_registry_path: Path) -> list[Person]:
    """Four living people with a mobile: an auditor, a non-auditor and two citizens."""
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        found = [p for p, mobiles in registry.iter_persons(300) if p.alive and mobiles]
    finally:
        registry.close()
    assert len(found) >= 4
    return found[:4]


@pytest.fixture
def browser(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as client:
        yield client
