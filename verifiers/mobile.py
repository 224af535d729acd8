"""Iranian mobile numbers in their one canonical form, ``09XXXXXXXXX``.

People write the same number as ``+98 912 123 4567``, ``0098-912-1234567``,
``989121234567``, ``9121234567`` or with Persian digits; the mobile-ownership
registry keys on the 11-digit national form. Rule slugs: ``empty``,
``digits``, ``length``, ``prefix`` (not a mobile range: mobiles start 09).
"""

from __future__ import annotations

import re

from verifiers.digits import is_ascii_digits, normalize_digits
from verifiers.identifiers import IdentifierError

_BRACKETS = re.compile(r"[()]")


def normalize_mobile(value: str) -> str:
    """Return ``09XXXXXXXXX`` or raise :class:`IdentifierError` with ``field="mobile"``."""
    field = "mobile"
    if not isinstance(value, str):
        raise IdentifierError(field, "digits", "mobile number must be given as a string")
    text = _BRACKETS.sub("", normalize_digits(value))
    if not text:
        raise IdentifierError(field, "empty", "mobile number is empty")
    if text.startswith("+"):
        if not text.startswith("+98"):
            raise IdentifierError(field, "prefix", "mobile number must be Iranian (+98 or 09...)")
        text = "0" + text[3:]
    elif text.startswith("0098"):
        text = "0" + text[4:]
    elif text.startswith("98") and len(text) == 12:
        text = "0" + text[2:]
    elif text.startswith("9") and len(text) == 10:
        text = "0" + text
    if not is_ascii_digits(text):
        bad = next(c for c in text if not ("0" <= c <= "9"))
        raise IdentifierError(
            field, "digits", f"mobile number may contain only digits; found {bad!r}"
        )
    if len(text) != 11:
        raise IdentifierError(
            field, "length", f"mobile number must have 11 digits like 09121234567, got {len(text)}"
        )
    if not text.startswith("09"):
        raise IdentifierError(
            field, "prefix", "mobile number must start with 09 (a landline number was given?)"
        )
    return text
