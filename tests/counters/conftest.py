"""Service counter fixtures: the real app over ASGI, two offices, their people, a citizen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))

from console_fixtures import browser, ca_ready, other_browser
from counter_support import Scene, build_scene

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


__all__ = ["active_entities", "browser", "ca_ready", "other_browser", "registry_people", "scene"]
