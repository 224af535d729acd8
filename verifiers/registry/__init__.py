"""Registry adapters: the civil, mobile-ownership and deeds registries behind small interfaces."""

from verifiers.registry.base import (
    CivilRegistry,
    DeedsRegistry,
    LegalEntity,
    MobileRegistry,
    Person,
    Registries,
    RegistryUnavailable,
    Representative,
    open_registries,
    register_adapter,
)

__all__ = [
    "CivilRegistry",
    "DeedsRegistry",
    "LegalEntity",
    "MobileRegistry",
    "Person",
    "Registries",
    "RegistryUnavailable",
    "Representative",
    "open_registries",
    "register_adapter",
]
