"""Jalali and Gregorian dates in any digit script."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifiers.dates import parse_date, to_jalali
from verifiers.identifiers import IdentifierError

MORDAD_12_1370 = date(1991, 8, 3)


@pytest.mark.parametrize(
    "typed",
    [
        "1370/05/12",
        "1370/5/12",
        "۱۳۷۰/۰۵/۱۲",
        "١٣٧٠/٠٥/١٢",
        "۱۳۷۰-۰۵-۱۲",
        "1370-05-12",
        " 1370/05/12\u200f ",
        "1991-08-03",
        "1991/08/03",
        "۱۹۹۱-۰۸-۰۳",
    ],
)
def test_same_day_in_every_form(typed: str) -> None:
    assert parse_date(typed) == MORDAD_12_1370


def test_to_jalali() -> None:
    assert to_jalali(MORDAD_12_1370) == "1370/05/12"
    assert to_jalali(date(2025, 3, 21)) == "1404/01/01"


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_jalali_round_trip(day: date) -> None:
    assert parse_date(to_jalali(day)) == day
    assert parse_date(day.isoformat()) == day


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("", "format"),
        ("1370/05", "format"),
        ("12/05/1370", "format"),
        ("1370/05-12", "format"),
        ("1370.05.12", "format"),
        ("yesterday", "format"),
        ("1370/13/01", "invalid-date"),
        ("1370/07/31", "invalid-date"),  # second-half months have 30 days
        ("1991-02-30", "invalid-date"),
        ("1991-13-01", "invalid-date"),
    ],
)
def test_bad_dates_name_the_rule(typed: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_date(typed, field="registration_date")
    assert (caught.value.field, caught.value.rule) == ("registration_date", rule)
    assert "registration_date" in caught.value.message


def test_default_field_is_birth_date() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_date("nonsense")
    assert caught.value.field == "birth_date"
