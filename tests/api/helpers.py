"""Picking real identities out of the synthetic registry for API tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verifiers.registry.synthetic import export


def living_person(registry_path: Path) -> dict[str, Any]:
    return next(p for p in export(registry_path, "persons", 200) if p["alive"] and p["mobiles"])


def active_entity(registry_path: Path) -> dict[str, Any]:
    today = __import__("datetime").date.today().isoformat()
    for entity in export(registry_path, "entities", 300):
        current = [
            r
            for r in entity["representatives"]
            if r["valid_from"] <= today and (r["valid_until"] is None or r["valid_until"] >= today)
        ]
        if entity["status"] == "active" and current:
            return {**entity, "current_representative": current[0]}
    raise AssertionError("no active entity with a current representative: " + json.dumps(today))
