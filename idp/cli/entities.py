"""The legal entity a credential command names, checked against the deeds registry.

``hoviyat acme eab create`` and ``hoviyat clients initial-token create`` both
make a credential for one entity under one service policy
(:func:`idp.entities.active_entity`); a refusal or an unreachable registry is
one line and a non-zero exit.
"""

from __future__ import annotations

from idp.cli.output import fail
from idp.context import registry_options
from idp.entities import EntityRefused, active_entity
from idp.settings import Settings
from policies.service_policy import ServicePolicy, load_service_policies
from verifiers.registry import RegistryUnavailable, open_registries


def checked_entity(
    settings: Settings, national_id: str, service_code: str, operation: str | None = None
) -> tuple[str, dict[str, ServicePolicy]]:
    """The entity's canonical national identifier, and the policies it was checked against."""
    policies = load_service_policies(settings.policies_dir)
    registries = open_registries(settings.registry_adapter, registry_options(settings))
    try:
        return active_entity(registries, policies, national_id, service_code, operation), policies
    except EntityRefused as error:
        fail(str(error))
    except RegistryUnavailable as error:
        fail(f"the deeds registry cannot answer now: {error}")
    finally:
        registries.close()
