"""National code, legal-entity national identifier and postal code checks (Article 11).

The algorithms are the ones in the design notes, section "Identifiers". Every
check first folds digit scripts and separators (:func:`normalize_digits`), then
either returns the canonical ASCII form or raises :class:`IdentifierError`
naming the field and the rule that failed, so an API can say exactly what to
fix.

Rule slugs (stable, part of the API's problem documents):

``empty``
    nothing but separators was given.
``digits``
    a character other than a digit remained after normalisation.
``length``
    wrong number of digits.
``repeated-digits``
    a national code of one repeated digit (passes the checksum, never issued).
``checksum``
    the check digit does not match.
``zero-half``
    a postal code whose first or last five digits are all zero.
``district``
    (opt-in) a national code whose first three digits are not in the
    caller's list of issuing district codes.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass

from verifiers.digits import is_ascii_digits, normalize_digits

__all__ = [
    "IdentifierError",
    "PostalCodeCheck",
    "national_code_check_digit",
    "national_id_check_digit",
    "normalize_digits",
    "validate_national_code",
    "validate_national_id",
    "validate_postal_code",
]


class IdentifierError(ValueError):
    """An identifier or date failed one named rule; ``str(e)`` is the English message."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"IdentifierError(field={self.field!r}, rule={self.rule!r}, message={self.message!r})"
        )


def _digits_only(value: object, field: str, label: str) -> str:
    if not isinstance(value, str):
        raise IdentifierError(field, "digits", f"{label} must be given as a string of digits")
    digits = normalize_digits(value)
    if not digits:
        raise IdentifierError(field, "empty", f"{label} is empty")
    if not is_ascii_digits(digits):
        bad = next(c for c in digits if not ("0" <= c <= "9"))
        raise IdentifierError(field, "digits", f"{label} may contain only digits; found {bad!r}")
    return digits


_NATIONAL_CODE_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def _require_length(digits: str, length: int, field: str, label: str, hint: str = "") -> None:
    if len(digits) != length:
        raise IdentifierError(
            field, "length", f"{label} must have exactly {length} digits, got {len(digits)}{hint}"
        )


def national_code_check_digit(body: str) -> int:
    """Check digit for the first nine digits of a national code.

    ``s = Σ d_i × (11 − i)`` for i = 1..9, ``r = s mod 11``; the check digit is
    ``r`` when ``r < 2``, else ``11 − r``.
    """
    s: int = sum(map(operator.mul, map(int, body[:9]), _NATIONAL_CODE_WEIGHTS))
    r = s % 11
    return r if r < 2 else 11 - r


def validate_national_code(
    value: str,
    *,
    pad: bool = False,
    allow_repeated: bool = False,
    districts: Collection[str] | None = None,
) -> str:
    """Return the 10 ASCII digits of a valid national code (کد ملی) or raise.

    ``pad`` left-pads 8 or 9 digits with zeros, as legacy records drop leading
    zeros (on for reconciliation, off for the API). ``allow_repeated`` accepts
    codes of one repeated digit, which pass the checksum but are never issued.
    ``districts``, when given, is the set of 3-digit issuing district prefixes
    to accept; off by default because new districts appear.
    """
    field, label = "national_code", "national code"
    digits = _digits_only(value, field, label)
    if pad and len(digits) in (8, 9):
        digits = digits.zfill(10)
    hint = "; leading zeros may have been dropped" if len(digits) in (8, 9) else ""
    _require_length(digits, 10, field, label, hint)
    if not allow_repeated and len(set(digits)) == 1:
        raise IdentifierError(
            field, "repeated-digits", f"{label} {digits} repeats one digit and is never issued"
        )
    if int(digits[9]) != national_code_check_digit(digits):
        raise IdentifierError(
            field, "checksum", f"{label} check digit does not match; check for a mistyped digit"
        )
    if districts is not None and digits[:3] not in districts:
        raise IdentifierError(
            field, "district", f"{label} starts with {digits[:3]}, not a known issuing district"
        )
    return digits


_ENTITY_WEIGHTS = (29, 27, 23, 19, 17)


def national_id_check_digit(body: str) -> int:
    """Check digit for the first ten digits of a legal entity's national identifier.

    ``t = d10 + 2``; ``s = Σ (d_i + t) × w_i`` with weights 29, 27, 23, 19, 17
    repeating; ``r = s mod 11``, and 10 becomes 0.
    """
    t = int(body[9]) + 2
    s = sum((int(d) + t) * _ENTITY_WEIGHTS[i % 5] for i, d in enumerate(body[:10]))
    r = s % 11
    return 0 if r == 10 else r


def validate_national_id(value: str) -> str:
    """Return the 11 ASCII digits of a valid legal-entity national identifier (شناسه ملی)."""
    field, label = "national_id", "national identifier"
    digits = _digits_only(value, field, label)
    _require_length(digits, 11, field, label)
    if int(digits[10]) != national_id_check_digit(digits):
        raise IdentifierError(
            field, "checksum", f"{label} check digit does not match; check for a mistyped digit"
        )
    return digits


@dataclass(frozen=True)
class PostalCodeCheck:
    """A postal code in canonical form, plus soft warnings (slugs) that never reject it."""

    value: str
    warnings: tuple[str, ...] = ()


# Soft rules from the public descriptions of Iran Post's numbering. They
# disagree with each other and with real addresses, so they only warn.
POSTAL_CODE_WARNINGS: dict[str, str] = {
    "zero-or-two-in-first-five": "the first five digits usually contain no 0 or 2",
    "five-in-fifth": "the fifth digit is usually not 5",
    "two-in-last-five": "the last five digits usually contain no 2",
    "repeated-prefix": "postal codes rarely start with four identical digits",
}


def validate_postal_code(value: str) -> PostalCodeCheck:
    """Format check of a 10-digit postal code (کد پستی); stricter rules only warn."""
    field, label = "postal_code", "postal code"
    digits = _digits_only(value, field, label)
    _require_length(digits, 10, field, label)
    if digits[:5] == "00000" or digits[5:] == "00000":
        raise IdentifierError(
            field, "zero-half", f"{label} cannot have five zeros as its first or last half"
        )
    warnings: list[str] = []
    if "0" in digits[:5] or "2" in digits[:5]:
        warnings.append("zero-or-two-in-first-five")
    if digits[4] == "5":
        warnings.append("five-in-fifth")
    if "2" in digits[5:]:
        warnings.append("two-in-last-five")
    if len(set(digits[:4])) == 1:
        warnings.append("repeated-prefix")
    return PostalCodeCheck(digits, tuple(warnings))
