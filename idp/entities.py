"""Legal entities that credentials are made for: checked once, the same way everywhere.

An ACME external account binding key and a dynamic-registration initial access
token are both made by an administrator for one legal entity (its national
identifier, شناسه ملی) under one service policy. Both need the same answer
first: the identifier is valid, the policy is loaded (and allows what the
credential is for), and the deeds registry knows the entity as active.
"""

from __future__ import annotations

from policies.service_policy import ServicePolicy
from verifiers.identifiers import IdentifierError, validate_national_id
from verifiers.registry.base import Registries


class EntityRefused(ValueError):
    """The entity or the service cannot have the credential; ``str(e)`` says why."""


def active_entity(
    registries: Registries,
    policies: dict[str, ServicePolicy],
    national_id: str,
    service_code: str,
    operation: str | None = None,
) -> str:
    """The canonical national identifier of an active entity under a loaded policy.

    ``operation``: one the policy must allow. Asks the deeds registry (raises
    ``RegistryUnavailable`` when it cannot answer): call from a worker thread.
    """
    try:
        canonical = validate_national_id(national_id)
    except IdentifierError as error:
        raise EntityRefused(str(error)) from None
    policy = policies.get(service_code)
    if policy is None:
        raise EntityRefused(f"no service policy {service_code!r} is loaded")
    if operation is not None and not policy.allows(operation):
        raise EntityRefused(f"service policy {service_code!r} does not allow {operation}")
    entity = registries.deeds.entity(canonical)
    if entity is None:
        raise EntityRefused(
            "no legal entity with this national identifier is in the deeds registry"
        )
    if entity.status != "active":
        raise EntityRefused(f"the legal entity is {entity.status}, not active")
    return canonical
