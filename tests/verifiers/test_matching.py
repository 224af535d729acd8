"""Per-field matching: an unknown person looks exactly like a wrong attribute."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date

import pytest

from verifiers.matching import (
    EntityClaims,
    PersonClaims,
    compare_entity,
    compare_person,
    current_representative,
    overall_match,
)
from verifiers.registry.base import LegalEntity, Person, Representative

PERSON = Person(
    national_code="0499370899",
    first_name="علی‌اکبر",
    last_name="کاظمی",
    father_name="مصطفی",
    birth_date=date(1991, 8, 3),
    gender="male",
    alive=True,
    national_card_serial="2A12345678",
    postal_code="1318914316",
)

ENTITY = LegalEntity(
    national_id="10380284790",
    name="شرکت پارس سهامی خاص",
    registration_number="12345",
    registration_date=date(2001, 1, 1),
    registering_body="اداره ثبت شرکت‌ها و مؤسسات غیرتجاری تهران",
    status="active",
    representatives=(
        Representative(
            "0499370899", "عضو هیئت‌مدیره", "بدون حق امضا", date(2018, 1, 1), date(2020, 1, 1)
        ),
        Representative("0499370899", "مدیرعامل", "امضای منفرد", date(2024, 1, 1), None),
        Representative("1234567891", "بازرس", "بدون حق امضا", date(2024, 1, 1), date(2026, 1, 1)),
    ),
)

ALL_PERSON_FIELDS = [f.name for f in fields(PersonClaims)]


def test_all_claims_match_with_registry_spelling_differences() -> None:
    claims = PersonClaims(
        first_name="علي اكبر",
        last_name="كاظمي",
        father_name="مصطفى",
        birth_date=date(1991, 8, 3),
        national_card_serial="۲a-۱۲۳۴۵۶۷۸",
        postal_code="۱۳۱۸۹-۱۴۳۱۶",
    )
    results = compare_person(PERSON, claims)
    assert results == dict.fromkeys(ALL_PERSON_FIELDS, "match")
    assert overall_match(results)


def test_one_wrong_attribute_is_a_mismatch_and_no_overall_match() -> None:
    results = compare_person(
        PERSON, PersonClaims(first_name="علی اکبر", birth_date=date(1991, 8, 4))
    )
    assert results["first_name"] == "match"
    assert results["birth_date"] == "mismatch"
    assert results["last_name"] == "not_checked"
    assert not overall_match(results)


@pytest.mark.parametrize(
    "claims",
    [
        PersonClaims(birth_date=date(1991, 8, 3)),
        PersonClaims(first_name="علی‌اکبر", last_name="کاظمی"),
        PersonClaims(postal_code="1318914316", national_card_serial="2A12345678"),
    ],
)
def test_unknown_person_has_the_shape_of_a_wrong_attribute(claims: PersonClaims) -> None:
    unknown = compare_person(None, claims)
    wrong = compare_person(
        replace(
            PERSON,
            birth_date=date(1900, 1, 1),
            first_name="x",
            last_name="y",
            postal_code="1",
            national_card_serial="z",
        ),
        claims,
    )
    assert unknown == wrong
    assert list(unknown) == ALL_PERSON_FIELDS
    assert not overall_match(unknown)


def test_no_claims_is_never_a_match() -> None:
    # Otherwise a bare national code would reveal that the person exists.
    assert not overall_match(compare_person(PERSON, PersonClaims()))
    assert not overall_match(compare_person(None, PersonClaims()))
    assert compare_person(PERSON, PersonClaims()) == compare_person(None, PersonClaims())


def test_entity_matching() -> None:
    results = compare_entity(
        ENTITY, EntityClaims(name="شركت پارس سهامي خاص", registration_number="۱۲۳۴۵")
    )
    assert results == {"name": "match", "registration_number": "match"}
    assert overall_match(results)
    wrong = compare_entity(ENTITY, EntityClaims(registration_number="54321"))
    assert wrong == {"name": "not_checked", "registration_number": "mismatch"}
    assert compare_entity(None, EntityClaims(registration_number="54321")) == wrong


def test_current_representative_picks_the_representation_in_force() -> None:
    ceo = current_representative(ENTITY, "0499370899", date(2025, 6, 1))
    assert ceo is not None and ceo.role == "مدیرعامل"
    former = current_representative(ENTITY, "0499370899", date(2019, 6, 1))
    assert former is not None and former.role == "عضو هیئت‌مدیره"
    assert current_representative(ENTITY, "1234567891", date(2026, 6, 1)) is None
    assert current_representative(ENTITY, "0000000001", date(2025, 6, 1)) is None
    assert current_representative(None, "0499370899", date(2025, 6, 1)) is None
