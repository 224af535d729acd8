"""The services a counter office's policy may list, and the check an act passes first.

Pure data: an office's policy is the set of these names stored with the office;
a clerk may run a service only if it is in that set.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class CounterService(StrEnum):
    # The citizen's stated particulars against the civil registry (match / no match).
    PERSON_VERIFICATION = "person_verification"
    # Whether a mobile number is the citizen's in the mobile-ownership registry.
    MOBILE_VERIFICATION = "mobile_verification"
    # A signed attestation of the citizen's chosen facts, with a verification code
    # the citizen hands to whoever needs the facts (instead of a photocopy).
    ATTESTATION_ISSUE = "attestation_issue"


TITLES: dict[CounterService, tuple[str, str]] = {
    CounterService.PERSON_VERIFICATION: ("استعلام هویت", "Identity verification"),
    CounterService.MOBILE_VERIFICATION: ("استعلام مالکیت شماره همراه", "Mobile ownership check"),
    CounterService.ATTESTATION_ISSUE: ("صدور گواهی‌نامهٔ هویت", "Issue an identity attestation"),
}


class UnknownService(ValueError):
    """A policy named a service Hoviyat does not offer at counters."""


def parse_services(names: Iterable[str]) -> list[str]:
    """The policy's services in canonical order; raises :class:`UnknownService` naming one."""
    chosen = set()
    for name in names:
        try:
            chosen.add(CounterService(name.strip()))
        except ValueError:
            offered = ", ".join(s.value for s in CounterService)
            raise UnknownService(f"unknown counter service {name!r}; offered: {offered}") from None
    if not chosen:
        raise UnknownService("an office's policy must list at least one service")
    return [s.value for s in CounterService if s in chosen]


def allows(policy: Iterable[str], service: str) -> bool:
    return service in set(policy)
