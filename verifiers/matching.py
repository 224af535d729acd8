"""Claimed attributes against registry records: match / mismatch / not_checked per field.

The verification API answers per attribute and must not reveal whether a
national code exists (design notes, "API conventions"). So a claim about a
person the registry does not know is a ``mismatch``, exactly as a wrong
attribute of a known person is, and both functions return the same keys
whatever the registry said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Literal, TypeVar

from verifiers.digits import normalize_digits
from verifiers.names import names_match
from verifiers.registry.base import LegalEntity, Person, Representative

FieldResult = Literal["match", "mismatch", "not_checked"]
R = TypeVar("R", Person, LegalEntity)


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
    return _compare(person, claims, _person_field_matches)


def compare_entity(entity: LegalEntity | None, claims: EntityClaims) -> dict[str, FieldResult]:
    """Every :class:`EntityClaims` field with its result."""
    return _compare(entity, claims, _entity_field_matches)


def _compare(
    record: R | None,
    claims: PersonClaims | EntityClaims,
    matches: Callable[[R, str, Any], bool],
) -> dict[str, FieldResult]:
    """A claim left out is not checked; any claim about a record not found mismatches."""
    results: dict[str, FieldResult] = {}
    for claim in fields(claims):
        claimed = getattr(claims, claim.name)
        if claimed is None:
            results[claim.name] = "not_checked"
        elif record is None:
            results[claim.name] = "mismatch"
        else:
            results[claim.name] = _result(matches(record, claim.name, claimed))
    return results


def _person_field_matches(person: Person, name: str, claimed: Any) -> bool:
    if name in ("first_name", "last_name", "father_name"):
        return names_match(claimed, getattr(person, name))
    if name == "birth_date":
        return bool(claimed == person.birth_date)
    return _same_code(claimed, getattr(person, name))


def _entity_field_matches(entity: LegalEntity, name: str, claimed: Any) -> bool:
    if name == "name":
        return names_match(claimed, entity.name)
    return _same_code(claimed, entity.registration_number)


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
