"""National code, national identifier and postal code checks (design notes, "Identifiers")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifiers.digits import normalize_digits, to_persian_digits
from verifiers.identifiers import (
    IdentifierError,
    national_code_check_digit,
    national_id_check_digit,
    validate_national_code,
    validate_national_id,
    validate_postal_code,
)

bodies9 = st.text(alphabet="0123456789", min_size=9, max_size=9)
bodies10 = st.text(alphabet="0123456789", min_size=10, max_size=10)


def _national_code_residue(code: str) -> int:
    return sum(int(d) * (10 - i) for i, d in enumerate(code[:9])) % 11


def _national_id_residue(code: str) -> int:
    t = int(code[9]) + 2
    weights = (29, 27, 23, 19, 17)
    return sum((int(d) + t) * weights[i % 5] for i, d in enumerate(code[:10])) % 11


def _single_digit_changes(code: str) -> list[tuple[int, str]]:
    return [
        (i, code[:i] + d + code[i + 1 :])
        for i in range(len(code))
        for d in "0123456789"
        if d != code[i]
    ]


def test_design_note_examples() -> None:
    assert validate_national_code("0499370899") == "0499370899"
    assert national_code_check_digit("049937089") == 9
    assert _national_code_residue("0499370899") == 2
    assert validate_national_id("10380284790") == "10380284790"


@given(bodies9)
def test_every_generated_national_code_is_accepted(body: str) -> None:
    code = body + str(national_code_check_digit(body))
    if len(set(code)) == 1:
        assert validate_national_code(code, allow_repeated=True) == code
    else:
        assert validate_national_code(code) == code


@given(bodies9)
def test_single_digit_change_of_national_code_is_rejected(body: str) -> None:
    """Every single-digit change fails, except the one blind spot of the algorithm:
    residues 1 and 10 both give check digit 1, so a change moving r between
    them keeps the check digit valid (e.g. 1234567891 and 3234567891)."""
    code = body + str(national_code_check_digit(body))
    for position, changed in _single_digit_changes(code):
        aliased = position < 9 and {
            _national_code_residue(code),
            _national_code_residue(changed),
        } == {1, 10}
        if aliased:
            assert validate_national_code(changed, allow_repeated=True) == changed
        else:
            with pytest.raises(IdentifierError) as caught:
                validate_national_code(changed, allow_repeated=True)
            assert caught.value.rule == "checksum"


def test_national_code_checksum_blind_spot_is_real() -> None:
    # Documented so nobody "fixes" the validator away from the design notes.
    assert validate_national_code("1234567891") == "1234567891"
    assert validate_national_code("3234567891") == "3234567891"


@given(bodies10)
def test_every_generated_national_id_is_accepted(body: str) -> None:
    code = body + str(national_id_check_digit(body))
    assert validate_national_id(code) == code


@given(bodies10)
def test_single_digit_change_of_national_id_is_rejected(body: str) -> None:
    """Every single-digit change fails, except where residues 0 and 10 meet
    (the algorithm maps r = 10 to check digit 0)."""
    code = body + str(national_id_check_digit(body))
    for position, changed in _single_digit_changes(code):
        aliased = position < 10 and {
            _national_id_residue(code),
            _national_id_residue(changed),
        } == {0, 10}
        if aliased:
            assert validate_national_id(changed) == changed
        else:
            with pytest.raises(IdentifierError) as caught:
                validate_national_id(changed)
            assert caught.value.rule == "checksum"


@pytest.mark.parametrize(
    "typed",
    [
        "۰۴۹۹۳۷۰۸۹۹",  # Persian digits
        "٠٤٩٩٣٧٠٨٩٩",  # Arabic-Indic digits
        "049-937089-9",
        " 0499 370 899 ",
        "0499\u200c370\u200d899\u200f",  # ZWNJ, ZWJ, RLM
        "\ufeff0499370899",
        "۰۴۹۹-۳۷۰\u00a0۸۹۹",  # no-break space
        "04٩٩37۰899",  # mixed scripts
        "0499–370—899",  # en and em dash
    ],
)
def test_national_code_in_any_script_and_separator(typed: str) -> None:
    assert validate_national_code(typed) == "0499370899"


def test_national_id_in_persian_digits() -> None:
    assert validate_national_id(to_persian_digits("10380284790")) == "10380284790"
    assert validate_national_id("103-8028-4790") == "10380284790"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "empty"),
        (" - \u200c", "empty"),
        ("04993708a9", "digits"),
        ("0499.370.899", "digits"),
        ("049937089", "length"),
        ("04993708999", "length"),
        ("1111111111", "repeated-digits"),
        ("0000000000", "repeated-digits"),
        ("0499370898", "checksum"),
    ],
)
def test_national_code_names_the_failing_rule(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_national_code(value)
    assert caught.value.field == "national_code"
    assert caught.value.rule == rule
    assert str(caught.value) == caught.value.message
    assert caught.value.message


def test_non_string_is_a_digits_error() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_national_code(499370899)  # type: ignore[arg-type]
    assert caught.value.rule == "digits"


def test_other_unicode_digits_are_not_digits() -> None:
    # str.isdigit() accepts superscripts and Bengali digits; the validator must not.
    with pytest.raises(IdentifierError) as caught:
        validate_national_code("049937089²")
    assert caught.value.rule == "digits"


def test_padding_is_a_switch() -> None:
    # 0049937083 is valid; legacy tables drop its leading zeros.
    code = "004993708" + str(national_code_check_digit("004993708"))
    stripped = code.lstrip("0")
    assert len(stripped) == 8
    with pytest.raises(IdentifierError) as caught:
        validate_national_code(stripped)
    assert caught.value.rule == "length"
    assert "leading zeros" in caught.value.message
    assert validate_national_code(stripped, pad=True) == code
    assert validate_national_code(code[1:], pad=True) == code


def test_padding_does_not_rescue_other_lengths() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_national_code("4993708", pad=True)
    assert caught.value.rule == "length"


@pytest.mark.parametrize("digit", "0123456789")
def test_repeated_digit_codes_pass_checksum_but_are_rejected_by_default(digit: str) -> None:
    code = digit * 10
    assert validate_national_code(code, allow_repeated=True) == code
    with pytest.raises(IdentifierError) as caught:
        validate_national_code(code)
    assert caught.value.rule == "repeated-digits"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "empty"),
        ("1038028479", "length"),
        ("103802847900", "length"),
        ("1038028479x", "digits"),
        ("10380284791", "checksum"),
    ],
)
def test_national_id_names_the_failing_rule(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_national_id(value)
    assert (caught.value.field, caught.value.rule) == ("national_id", rule)


def test_postal_code_format_only() -> None:
    check = validate_postal_code("۱۳۱۸۹-۱۴۳۱۶")
    assert check.value == "1318914316"
    assert check.warnings == ()


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        ("1028914316", "zero-or-two-in-first-five"),
        ("1318514316", "five-in-fifth"),
        ("1318912316", "two-in-last-five"),
        ("1111914316", "repeated-prefix"),
    ],
)
def test_postal_code_stricter_rules_only_warn(value: str, warning: str) -> None:
    check = validate_postal_code(value)
    assert check.value == value
    assert warning in check.warnings


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("0000012345", "zero-half"),
        ("1234500000", "zero-half"),
        ("131891431", "length"),
        ("13189143161", "length"),
        ("13189a4316", "digits"),
        ("", "empty"),
    ],
)
def test_postal_code_rejections(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_postal_code(value)
    assert (caught.value.field, caught.value.rule) == ("postal_code", rule)


def test_normalize_digits_keeps_what_it_does_not_understand() -> None:
    assert normalize_digits("۱۲-۳ ٤\u200c5") == "12345"
    assert normalize_digits("12a") == "12a"


def test_district_prefix_check_is_opt_in() -> None:
    assert validate_national_code("0499370899") == "0499370899"
    assert validate_national_code("0499370899", districts={"049", "001"}) == "0499370899"
    with pytest.raises(IdentifierError) as caught:
        validate_national_code("0499370899", districts={"001", "002"})
    assert caught.value.rule == "district"
    assert "049" in caught.value.message
