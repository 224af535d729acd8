"""JSON form of registry records, shared by the registry server, the HTTP adapter and export.

Dates are ISO strings; ``*_jalali`` companions are added for people picking
test identities and ignored when reading. Reading is strict: a record missing
a field is a broken registry answer, reported as :class:`ValueError` for the
adapter to turn into ``RegistryUnavailable``.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from verifiers.dates import to_jalali
from verifiers.registry.base import LegalEntity, Person, Representative

ENTITY_STATUSES = ("active", "dissolved", "suspended", "in_liquidation")


def person_to_json(person: Person, mobiles: tuple[str, ...] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "national_code": person.national_code,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "father_name": person.father_name,
        "birth_date": person.birth_date.isoformat(),
        "birth_date_jalali": to_jalali(person.birth_date),
        "gender": person.gender,
        "alive": person.alive,
        "national_card_serial": person.national_card_serial,
        "postal_code": person.postal_code,
    }
    if mobiles is not None:
        body["mobiles"] = list(mobiles)
    return body


def person_from_json(body: dict[str, Any]) -> Person:
    try:
        gender = body["gender"]
        if gender not in ("male", "female"):
            raise ValueError(f"unknown gender {gender!r}")
        return Person(
            national_code=str(body["national_code"]),
            first_name=str(body["first_name"]),
            last_name=str(body["last_name"]),
            father_name=str(body["father_name"]),
            birth_date=date.fromisoformat(body["birth_date"]),
            gender=gender,
            alive=bool(body["alive"]),
            national_card_serial=str(body["national_card_serial"]),
            postal_code=str(body["postal_code"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed person record: {exc!r}") from None


def representative_to_json(representative: Representative) -> dict[str, Any]:
    return _record_to_json(representative)


def entity_to_json(entity: LegalEntity) -> dict[str, Any]:
    return _record_to_json(entity)


# Dates that get a ``*_jalali`` companion (for people; readers ignore it).
_WITH_JALALI = frozenset({"birth_date", "registration_date"})


def _record_to_json(record: Representative | LegalEntity) -> dict[str, Any]:
    """Every field in declaration order: dates as ISO strings, nested records as lists.

    Not used for persons: :func:`person_to_json` answers every registry
    lookup, and a literal is four times faster than this walk.
    """
    body: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, date):
            body[item.name] = value.isoformat()
            if item.name in _WITH_JALALI:
                body[f"{item.name}_jalali"] = to_jalali(value)
        elif isinstance(value, tuple):
            body[item.name] = [_record_to_json(nested) for nested in value]
        else:
            body[item.name] = value
    return body


def entity_from_json(body: dict[str, Any]) -> LegalEntity:
    try:
        status = body["status"]
        if status not in ENTITY_STATUSES:
            raise ValueError(f"unknown entity status {status!r}")
        return LegalEntity(
            national_id=str(body["national_id"]),
            name=str(body["name"]),
            registration_number=str(body["registration_number"]),
            registration_date=date.fromisoformat(body["registration_date"]),
            registering_body=str(body["registering_body"]),
            status=status,
            representatives=tuple(
                Representative(
                    national_code=str(r["national_code"]),
                    role=str(r["role"]),
                    signing_authority=str(r["signing_authority"]),
                    valid_from=date.fromisoformat(r["valid_from"]),
                    valid_until=date.fromisoformat(r["valid_until"]) if r["valid_until"] else None,
                )
                for r in body["representatives"]
            ),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed entity record: {exc!r}") from None
