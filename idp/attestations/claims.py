"""The facts an attestation states, as OpenID Connect for Identity Assurance ``verified_claims``.

Each registry answer becomes one ``verified_claims`` element (OIDC4IDA 1.0
§5): a ``verification`` naming the trust framework, the level of assurance,
the time, and an ``electronic_record`` evidence whose source is the registry,
and ``claims`` holding the facts, each marked :class:`~rfc9901.Sd` so the
SD-JWT form discloses them one by one.

Derived facts answer a question without the data behind it: ``age_over_N``
(from the birth date, which is not included), ``alive``, and
``representation`` (is a current representative of entity X; role and signing
authority are separate disclosures inside it). None of them carries a birth
date or a national code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from idp.attestations.rfc9901 import Sd
from idp.oidc.claims import CIVIL_REGISTRY, EVIDENCE_TYPE, TRUST_FRAMEWORK
from verifiers.registry.base import LegalEntity, Person

# The same trust framework, evidence type and civil registry source as the
# verified_claims of OIDC logins (idp.oidc.claims): one vocabulary for receivers.
CIVIL_REGISTRY_SOURCE = {"name": CIVIL_REGISTRY, "country_code": "IRN"}
DEEDS_REGISTRY_SOURCE = {
    "name": "Deeds and Properties Registration Organization (سازمان ثبت اسناد و املاک کشور)",
    "country_code": "IRN",
}
PERSON_FACTS = (
    "given_name",
    "family_name",
    "father_name",
    "birthdate",
    "national_code",
    "postal_code",
    "alive",
)
FACTS = (*PERSON_FACTS, "representation")
# Facts that identify the holder directly; a "derived facts only" attestation has none.
IDENTIFYING_FACTS = frozenset({"birthdate", "national_code"})


class FactSelectionError(ValueError):
    """The request names a fact that cannot be attested; the message says which and why."""


@dataclass(frozen=True)
class FactSelection:
    """What the holder chose to include."""

    facts: frozenset[str] = field(default_factory=frozenset)
    age_over: tuple[int, ...] = ()
    entity_national_id: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.facts) - set(FACTS)
        if unknown:
            raise FactSelectionError(
                f"unknown facts {sorted(unknown)}; choose from {', '.join(FACTS)}"
            )
        for threshold in self.age_over:
            if not 1 <= threshold <= 150:
                raise FactSelectionError(f"age_over threshold {threshold} is outside 1..150")
        if ("representation" in self.facts) != (self.entity_national_id is not None):
            raise FactSelectionError(
                "the representation fact and entity_national_id go together: give both or neither"
            )
        if not self.facts and not self.age_over:
            raise FactSelectionError("choose at least one fact or an age_over threshold")

    @classmethod
    def of(
        cls,
        facts: Iterable[str],
        age_over: Iterable[int] = (),
        entity_national_id: str | None = None,
    ) -> FactSelection:
        return cls(frozenset(facts), tuple(sorted(set(age_over))), entity_national_id)

    @property
    def person_facts(self) -> list[str]:
        return [name for name in PERSON_FACTS if name in self.facts]


def age_on(birth_date: date, on: date) -> int:
    """Completed years; someone born on 29 February has a birthday on 1 March in common years."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _person_claims(person: Person, selection: FactSelection, as_of: date) -> dict[Any, Any]:
    values: dict[str, Any] = {
        "given_name": person.first_name,
        "family_name": person.last_name,
        "father_name": person.father_name,
        "birthdate": person.birth_date.isoformat(),
        "national_code": person.national_code,
        "postal_code": person.postal_code,
        "alive": person.alive,
    }
    claims: dict[Any, Any] = {Sd(name): values[name] for name in selection.person_facts}
    age = age_on(person.birth_date, as_of)
    for threshold in selection.age_over:
        claims[Sd(f"age_over_{threshold}")] = age >= threshold
    return claims


def _representation(person: Person, entity: LegalEntity, as_of: date) -> dict[Any, Any]:
    if entity.status != "active":
        raise FactSelectionError(f"entity {entity.national_id} is {entity.status}, not active")
    current = [
        rep
        for rep in entity.representatives
        if rep.national_code == person.national_code and rep.is_current(as_of)
    ]
    if not current:
        raise FactSelectionError(
            f"the deeds registry lists you as no current representative of {entity.national_id}"
        )
    rep = current[0]
    return {
        "national_id": entity.national_id,
        "name": entity.name,
        Sd("role"): rep.role,
        Sd("signing_authority"): rep.signing_authority,
    }


def _verification(
    level: str, verified_at: datetime, record_type: str, source: Mapping[str, str]
) -> dict[str, Any]:
    time = verified_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "trust_framework": TRUST_FRAMEWORK,
        "assurance_level": level,
        "time": time,
        "evidence": [
            {
                "type": EVIDENCE_TYPE,
                "check_details": [{"check_method": "data"}],
                "time": time,
                "record": {"type": record_type, "source": dict(source)},
            }
        ],
    }


def verified_claims(
    person: Person,
    selection: FactSelection,
    *,
    level: str,
    verified_at: datetime,
    entity: LegalEntity | None = None,
) -> list[dict[Any, Any]]:
    """One ``verified_claims`` element per registry consulted, facts marked disclosable."""
    as_of = verified_at.date()
    elements: list[dict[Any, Any]] = []
    person_claims = _person_claims(person, selection, as_of)
    if person_claims:
        elements.append(
            {
                "verification": _verification(
                    level, verified_at, "population_register", CIVIL_REGISTRY_SOURCE
                ),
                "claims": person_claims,
            }
        )
    if "representation" in selection.facts:
        if entity is None or entity.national_id != selection.entity_national_id:
            raise FactSelectionError(
                f"the deeds registry has no entity {selection.entity_national_id}"
            )
        elements.append(
            {
                "verification": _verification(
                    level, verified_at, "company_register", DEEDS_REGISTRY_SOURCE
                ),
                "claims": {Sd("representation"): _representation(person, entity, as_of)},
            }
        )
    return elements


def plain(node: Any) -> Any:
    """The same claims with every :class:`Sd` marker removed: the JWT form shows all."""
    if type(node) in (str, int, bool, float) or node is None:
        return node
    if isinstance(node, dict):
        return {(k.value if isinstance(k, Sd) else k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(item.value if isinstance(item, Sd) else item) for item in node]
    return node
