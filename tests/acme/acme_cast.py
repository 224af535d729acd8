"""Who the ACME tests act for: the CA, the service policy and the legal entities.

Kept out of conftest.py so test modules import it by a name of its own: two
folders' ``conftest`` modules cannot both be imported as ``conftest``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from verifiers.registry.synthetic import export

ACME_CA = "infrastructure"  # the issuing CA of tls-server and tls-server-short
ACME_SERVICE = "demo-tax-portal"  # a service policy with an [acme] table


def active_entity_ids(registry_path: Path, count: int = 3) -> list[str]:
    """National identifiers of active legal entities in the synthetic registry."""
    today = date.today().isoformat()
    found = [
        entity["national_id"]
        for entity in export(registry_path, "entities", 300)
        if entity["status"] == "active" and entity["registration_date"] <= today
    ]
    assert len(found) >= count, "the synthetic registry has too few active entities"
    return found[:count]
