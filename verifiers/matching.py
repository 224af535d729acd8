"""Claimed attributes against registry records: match / mismatch / not_checked per field.

The verification API answers per attribute and must not reveal whether a
national code exists (design notes, "API conventions"). So a claim about a
person the registry does not know is a ``mismatch``, exactly as a wrong
attribute of a known person is, and both functions return the same keys
whatever the registry said.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Literal

from verifiers.digits import normalize_digits
from verifiers.names import names_match
from verifiers.registry.base import LegalEntity, Person, Representative

FieldResult = Literal["match", "mismatch", "not_checked"]


@dataclass(frozen=True)
class PersonClaims:
    """What a caller asserts about a person; ``None`` means "not asked"."""

    first_name: str | None = None
    last_name: str | None = None
    father_name: str | None = None
    birth_date: date | None = None
    national_card_serial: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True)
class EntityClaims:
    """What a caller asserts about a legal entity; ``None`` means "not asked"."""

    name: str | None = None
    registration_number: str | None = None


def _same_code(a: str, b: str) -> bool:
    # Serials and numbers arrive in any digit script, with separators, and
    # the letter of a card serial in either case.
    left, right = normalize_digits(a).upper(), normalize_digits(b).upper()
    return bool(left) and left == right


def _result(ok: bool) -> FieldResult:
    return "match" if ok else "mismatch"


def compare_person(person: Person | None, claims: PersonClaims) -> dict[str, FieldResult]:
    """Every :class:`PersonClaims` field, in declaration order, with its result."""
    results: dict[str, FieldResult] = {}
    for claim in fields(PersonClaims):
        claimed = getattr(claims, claim.name)
        if claimed is None:
            results[claim.name] = "not_checked"
        elif person is None:
            results[claim.name] = "mismatch"
        elif claim.name in ("first_name", "last_name", "father_name"):
            results[claim.name] = _result(names_match(claimed, getattr(person, claim.name)))
        elif claim.name == "birth_date":
            results[claim.name] = _result(claimed == person.birth_date)
        else:
            results[claim.name] = _result(_same_code(claimed, getattr(person, claim.name)))
    return results


def compare_entity(entity: LegalEntity | None, claims: EntityClaims) -> dict[str, FieldResult]:
    """Every :class:`EntityClaims` field with its result."""
    results: dict[str, FieldResult] = {}
    for claim in fields(EntityClaims):
        claimed = getattr(claims, claim.name)
        if claimed is None:
            results[claim.name] = "not_checked"
        elif entity is None:
            results[claim.name] = "mismatch"
        elif claim.name == "name":
            results[claim.name] = _result(names_match(claimed, entity.name))
        else:
            results[claim.name] = _result(_same_code(claimed, entity.registration_number))
    return results


def overall_match(results: Mapping[str, FieldResult]) -> bool:
    """True iff no field mismatched and at least one field matched.

    A request that claims nothing is not a match: otherwise a bare national
    code would confirm that the person exists. An unknown person turns every
    claimed field into a mismatch, so it is never a match either.
    """
    values = list(results.values())
    return "mismatch" not in values and "match" in values


def current_representative(
    entity: LegalEntity | None, national_code: str, on: date
) -> Representative | None:
    """The representation of ``national_code`` in force on ``on``, if any.

    When the registry lists the person more than once (re-appointed, or two
    roles), the one in force that started last wins.
    """
    if entity is None:
        return None
    current = [
        r for r in entity.representatives if r.national_code == national_code and r.is_current(on)
    ]
    return max(current, key=lambda r: r.valid_from, default=None)
