"""Service policies: the bylaw's Article 2 service card turned into enforcement.

A policy is data (one TOML file per agency service) plus the small pure
functions that answer "may this client do that?". Loading is the only I/O.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from policies.acme import AcmePolicy, parse_acme_table

BUILTIN_DIR = Path(__file__).parent / "services"

Operation = Literal[
    "identifiers.validate",
    "persons.verify",
    "mobile.verify",
    "legal_entities.verify",
    "representatives.verify",
    "reconciliations.create",
    "oidc.login",
    "attestations.request",
]
OPERATIONS: frozenset[str] = frozenset(Operation.__args__)  # type: ignore[attr-defined]
PERSON_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "father_name",
        "birth_date",
        "gender",
        "alive",
        "national_card_serial",
        "postal_code",
        "national_code",
        "phone_number",
    }
)
ENTITY_FIELDS = frozenset(
    {"name", "registration_number", "registration_date", "registering_body", "status"}
)
SERVICE_TYPES = frozenset({"sovereign", "support", "enterprise"})

# Which operations can disclose each grantable field. A field granted to a
# policy none of whose operations can disclose it is a policy that promises
# what it never does: refused at load. The registry's person record has no
# mobile number, so ``phone_number`` is the number the mobile-ownership
# registry confirmed (mobile.verify) or the login verified (oidc.login).
PERSON_FIELD_DOORS: dict[str, frozenset[str]] = {
    "first_name": frozenset({"persons.verify", "oidc.login", "reconciliations.create"}),
    "last_name": frozenset({"persons.verify", "oidc.login", "reconciliations.create"}),
    "father_name": frozenset({"persons.verify", "oidc.login", "reconciliations.create"}),
    "birth_date": frozenset({"persons.verify", "oidc.login", "reconciliations.create"}),
    "postal_code": frozenset({"persons.verify", "oidc.login", "reconciliations.create"}),
    "gender": frozenset({"persons.verify", "oidc.login"}),
    "national_code": frozenset({"persons.verify", "oidc.login"}),
    "alive": frozenset({"persons.verify", "reconciliations.create"}),
    "national_card_serial": frozenset({"persons.verify"}),
    "phone_number": frozenset({"mobile.verify", "oidc.login"}),
}
ENTITY_FIELD_DOORS: dict[str, frozenset[str]] = {
    "name": frozenset({"legal_entities.verify", "oidc.login"}),
    "registration_number": frozenset({"legal_entities.verify"}),
    "registration_date": frozenset({"legal_entities.verify"}),
    "registering_body": frozenset({"legal_entities.verify"}),
    "status": frozenset({"legal_entities.verify"}),
}


class PolicyError(ValueError):
    """A policy file that does not describe a valid service card."""


@dataclass(frozen=True)
class RateLimits:
    per_client_per_minute: int = 6000
    per_subject_per_minute: int = 30


@dataclass(frozen=True)
class ServicePolicy:
    service_code: str
    title_fa: str
    title_en: str
    legal_basis: str
    service_type: str
    operations: frozenset[str]
    person_disclosure: frozenset[str] = frozenset()
    entity_disclosure: frozenset[str] = frozenset()
    rate_limits: RateLimits = field(default_factory=RateLimits)
    distinguish_not_found: bool = False
    pad_national_code: bool = False
    history_delay_days: int = 0
    min_acr: str = "http://eidas.europa.eu/LoA/low"
    acme: AcmePolicy = field(default_factory=AcmePolicy)  # names it may order (policies.acme)

    def allows(self, operation: str) -> bool:
        return operation in self.operations

    def discloses_person(self, field_name: str) -> bool:
        return field_name in self.person_disclosure

    def discloses_entity(self, field_name: str) -> bool:
        return field_name in self.entity_disclosure

    def to_document(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("operations", "person_disclosure", "entity_disclosure"):
            document[key] = sorted(document[key])
        # Only a policy with ACME domains carries the table: the others' digests stay put.
        document.pop("acme")
        if self.acme.domains:
            document["acme"] = self.acme.to_document()
        return document

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_document(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_policy(document: Mapping[str, Any], source: str = "<memory>") -> ServicePolicy:
    def need(key: str) -> Any:
        if key not in document:
            raise PolicyError(f"{source}: missing required key {key!r}")
        return document[key]

    operations = frozenset(need("operations"))
    unknown = operations - OPERATIONS
    if unknown:
        raise PolicyError(f"{source}: unknown operations {sorted(unknown)}")
    service_type = need("type")
    if service_type not in SERVICE_TYPES:
        raise PolicyError(f"{source}: type must be one of {sorted(SERVICE_TYPES)}")
    disclosure = document.get("disclosure", {})
    person = frozenset(disclosure.get("person", []))
    entity = frozenset(disclosure.get("entity", []))
    if person - PERSON_FIELDS:
        raise PolicyError(f"{source}: unknown person fields {sorted(person - PERSON_FIELDS)}")
    if entity - ENTITY_FIELDS:
        raise PolicyError(f"{source}: unknown entity fields {sorted(entity - ENTITY_FIELDS)}")
    _check_disclosable(person, PERSON_FIELD_DOORS, operations, "person", source)
    _check_disclosable(entity, ENTITY_FIELD_DOORS, operations, "entity", source)
    limits = document.get("rate_limits", {})
    try:
        acme = parse_acme_table(document.get("acme"), source)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None
    return ServicePolicy(
        service_code=str(need("service_code")),
        title_fa=str(need("title_fa")),
        title_en=str(need("title_en")),
        legal_basis=str(need("legal_basis")),
        service_type=service_type,
        operations=operations,
        person_disclosure=person,
        entity_disclosure=entity,
        rate_limits=RateLimits(**limits),
        distinguish_not_found=bool(document.get("distinguish_not_found", False)),
        pad_national_code=bool(document.get("pad_national_code", False)),
        history_delay_days=int(document.get("history_delay_days", 0)),
        min_acr=str(document.get("min_acr", "http://eidas.europa.eu/LoA/low")),
        acme=acme,
    )


def _check_disclosable(
    granted: frozenset[str],
    doors: Mapping[str, frozenset[str]],
    operations: frozenset[str],
    kind: str,
    source: str,
) -> None:
    for name in sorted(granted):
        if not doors[name] & operations:
            raise PolicyError(
                f"{source}: {kind} field {name!r} is granted but none of the policy's "
                f"operations discloses it; add one of {sorted(doors[name])} or drop the field"
            )


def load_policy_files(paths: Iterable[Path]) -> dict[str, ServicePolicy]:
    policies: dict[str, ServicePolicy] = {}
    for path in sorted(paths):
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: {exc}") from exc
        policy = parse_policy(document, str(path))
        policies[policy.service_code] = policy
    return policies


def load_service_policies(extra_dir: Path | None = None) -> dict[str, ServicePolicy]:
    """The built-in policies, then any in ``extra_dir`` (same service code replaces)."""
    paths = list(BUILTIN_DIR.glob("*.toml"))
    if extra_dir is not None:
        paths += list(extra_dir.glob("*.toml"))
    return load_policy_files(paths)
