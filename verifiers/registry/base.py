"""What a registry answers, and the three interfaces every adapter implements.

Adapters are looked up by name (``HOVIYAT_REGISTRY_ADAPTER``). Adding one means
implementing the three protocols and calling :func:`register_adapter`; nothing
else in Hoviyat changes. A registry that cannot answer raises
:class:`RegistryUnavailable`: it must never be mistaken for "no such person".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable

Gender = Literal["male", "female"]
EntityStatus = Literal["active", "dissolved", "suspended", "in_liquidation"]


@dataclass(frozen=True, slots=True)
class Person:
    """A natural person as the civil registry (ثبت احوال) records them."""

    national_code: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: date
    gender: Gender
    alive: bool
    national_card_serial: str
    postal_code: str


@dataclass(frozen=True, slots=True)
class Representative:
    """A person the deeds registry lists as acting for an entity."""

    national_code: str
    role: str
    signing_authority: str
    valid_from: date
    valid_until: date | None

    def is_current(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on <= self.valid_until)


@dataclass(frozen=True, slots=True)
class LegalEntity:
    """A legal person as the deeds registry (ثبت اسناد و املاک) records it."""

    national_id: str
    name: str
    registration_number: str
    registration_date: date
    registering_body: str
    status: EntityStatus
    representatives: tuple[Representative, ...] = field(default_factory=tuple)


class RegistryUnavailable(Exception):
    """The registry could not answer (down, timing out, circuit open)."""

    def __init__(self, registry: str, reason: str, retry_after: int = 5) -> None:
        super().__init__(f"{registry} registry unavailable: {reason}")
        self.registry = registry
        self.reason = reason
        self.retry_after = retry_after


@runtime_checkable
class CivilRegistry(Protocol):
    def person(self, national_code: str) -> Person | None: ...


@runtime_checkable
class MobileRegistry(Protocol):
    def owns(self, national_code: str, mobile: str) -> bool: ...


@runtime_checkable
class DeedsRegistry(Protocol):
    def entity(self, national_id: str) -> LegalEntity | None: ...

    def entities_represented_by(self, national_code: str) -> list[str]:
        """National identifiers of the entities listing this person as a representative.

        Any listing, current or not: whether the person may act now is read
        from the entity itself (status, validity dates).
        """
        ...


@dataclass(frozen=True)
class Registries:
    """The three registries one deployment talks to, plus a readiness probe."""

    civil: CivilRegistry
    mobile: MobileRegistry
    deeds: DeedsRegistry
    ping: Callable[[], None]
    close: Callable[[], None] = lambda: None
    # False for adapters that answer in-process in microseconds (the synthetic
    # registry): callers may then skip the hop to a worker thread.
    blocking: bool = True


AdapterFactory = Callable[[Mapping[str, Any]], Registries]
_ADAPTERS: dict[str, AdapterFactory] = {}


def register_adapter(name: str, factory: AdapterFactory) -> None:
    _ADAPTERS[name] = factory


def open_registries(name: str, options: Mapping[str, Any]) -> Registries:
    """Build the adapter ``name`` with ``options`` (``path``, ``url``, ``timeout``...)."""
    _load_builtin_adapters()
    try:
        factory = _ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS))
        raise ValueError(f"unknown registry adapter {name!r}; known: {known}") from None
    return factory(options)


def _load_builtin_adapters() -> None:
    # Imported for their register_adapter() side effect.
    import verifiers.registry.http_adapter
    import verifiers.registry.synthetic  # noqa: F401
