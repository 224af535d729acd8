"""One legacy row against the real synthetic registry, under real service policies."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from idp.reconciliation.legacy_csv import LegacyRow
from idp.reconciliation.rows import reconcile_row
from policies.service_policy import ServicePolicy, load_service_policies
from verifiers.dates import to_jalali
from verifiers.registry import Person
from verifiers.registry.synthetic import SyntheticRegistry


@pytest.fixture
def registry(synthetic_registry_path: Path) -> Iterator[SyntheticRegistry]:
    registry = SyntheticRegistry(synthetic_registry_path)
    yield registry
    registry.close()


@pytest.fixture
def people(registry: SyntheticRegistry) -> list[Person]:
    return [person for person, _ in registry.iter_persons(400)]


@pytest.fixture
def bank() -> ServicePolicy:
    return load_service_policies()["demo-bank-kyc"]


def row_of(person: Person, **changes: str) -> LegacyRow:
    values = {
        "national_code": person.national_code,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "father_name": person.father_name,
        "birth_date": to_jalali(person.birth_date),
        "postal_code": person.postal_code,
    }
    values.update(changes)
    return LegacyRow(1, values)


def test_clean_row_matches_everywhere_and_needs_no_review(registry, people, bank) -> None:
    result = reconcile_row(row_of(people[0]), registry, bank)
    assert set(result.results.values()) == {"match"}
    assert result.reasons == () and result.filled == {}
    assert result.outcome == "match" and result.national_code_result == "valid"


def test_dropped_leading_zeros_are_padded(registry, people, bank) -> None:
    person = next(p for p in people if p.national_code.startswith("0"))
    result = reconcile_row(
        row_of(person, national_code=person.national_code.lstrip("0")), registry, bank
    )
    assert result.national_code == person.national_code
    assert result.national_code_result == "padded"
    assert result.outcome == "match"


def test_wrong_birth_date_is_a_mismatch_needing_review(registry, people, bank) -> None:
    person = people[1]
    wrong = to_jalali(person.birth_date + timedelta(days=3))
    result = reconcile_row(row_of(person, birth_date=wrong), registry, bank)
    assert result.results["birth_date"] == "mismatch"
    assert result.results["first_name"] == "match"
    assert result.reasons == ("mismatch:birth_date",)
    assert result.outcome == "no_match"


def test_missing_fields_are_filled_only_where_the_policy_discloses(registry, people, bank) -> None:
    person = next(p for p in people if p.alive)
    result = reconcile_row(
        row_of(person, birth_date="", father_name="", postal_code=""), registry, bank
    )
    assert result.results["birth_date"] == "missing"
    # demo-bank-kyc discloses birth_date but neither father_name nor postal_code.
    assert result.filled == {"birth_date": person.birth_date.isoformat()}
    assert result.reasons == ()


def test_nothing_is_filled_for_a_match_only_policy(registry, people, bank) -> None:
    match_only = dataclasses.replace(bank, person_disclosure=frozenset())
    result = reconcile_row(row_of(people[2], birth_date=""), registry, match_only)
    assert result.results["birth_date"] == "missing"
    assert result.filled == {}


def test_nothing_is_filled_when_another_field_mismatches(registry, people, bank) -> None:
    person = people[3]
    result = reconcile_row(row_of(person, birth_date="", first_name="ناشناس"), registry, bank)
    assert result.results["first_name"] == "mismatch"
    assert result.filled == {}
    assert "mismatch:first_name" in result.reasons


def test_a_bare_national_code_fills_nothing(registry, people, bank) -> None:
    person = people[4]
    row = LegacyRow(1, {"national_code": person.national_code})
    result = reconcile_row(row, registry, bank)
    assert result.filled == {}
    assert result.reasons == ("nothing-to-compare",)


def test_unknown_person_looks_like_wrong_attributes(registry, people, bank) -> None:
    known = people[5]
    unknown_code = "0499370899"
    assert registry.person(unknown_code) is None
    wrong = reconcile_row(
        row_of(
            known,
            first_name="x",
            last_name="y",
            father_name="z",
            birth_date="1300/01/01",
            postal_code="1111111111",
        ),
        registry,
        bank,
    )
    unknown = reconcile_row(row_of(known, national_code=unknown_code), registry, bank)
    assert unknown.results == wrong.results
    assert unknown.reasons == wrong.reasons


def test_policy_that_may_distinguish_says_not_in_registry(registry, people, bank) -> None:
    investigating = dataclasses.replace(bank, distinguish_not_found=True)
    result = reconcile_row(row_of(people[5], national_code="0499370899"), registry, investigating)
    assert result.reasons[0] == "not-in-registry"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("0499370898", "invalid:national_code:checksum"),
        ("12345", "invalid:national_code:length"),
        ("", "missing:national_code"),
    ],
)
def test_bad_national_codes_are_not_looked_up(registry, people, bank, code, reason) -> None:
    result = reconcile_row(row_of(people[6], national_code=code), registry, bank)
    assert result.reasons == (reason,)
    assert set(result.results.values()) == {"not_checked"}
    assert result.outcome == "invalid"


def test_malformed_date_is_invalid_and_filled_when_disclosed(registry, people, bank) -> None:
    person = next(p for p in people if p.alive)
    result = reconcile_row(row_of(person, birth_date="1370.05.12x"), registry, bank)
    assert result.results["birth_date"] == "invalid"
    assert result.filled == {"birth_date": person.birth_date.isoformat()}
    match_only = dataclasses.replace(bank, person_disclosure=frozenset())
    unfilled = reconcile_row(row_of(person, birth_date="1370.05.12x"), registry, match_only)
    assert unfilled.reasons == ("invalid:birth_date:format",)


def test_persian_digits_and_arabic_letters_still_match(registry, people, bank) -> None:
    person = next(p for p in people if "ی" in p.first_name)
    row = row_of(
        person,
        first_name=person.first_name.replace("ی", "ي"),
        postal_code=person.postal_code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")),
    )
    assert reconcile_row(row, registry, bank).outcome == "match"


def test_deceased_person_needs_review_when_policy_discloses_alive(registry, people, bank) -> None:
    person = next(p for p in people if not p.alive)
    deceased = reconcile_row(row_of(person), registry, bank)
    assert deceased.reasons == ("deceased",) and deceased.outcome == "match"
    silent = dataclasses.replace(bank, person_disclosure=frozenset({"first_name"}))
    assert reconcile_row(row_of(person), registry, silent).reasons == ()


def test_malformed_row_is_reported_not_looked_up(registry, bank) -> None:
    result = reconcile_row(LegacyRow(9, {}, "column-count: expected 6, got 2"), registry, bank)
    assert result.reasons == ("malformed-row: column-count: expected 6, got 2",)
    assert result.outcome == "invalid" and result.number == 9
