"""Mobile numbers to the canonical 09XXXXXXXXX form."""

from __future__ import annotations

import pytest

from verifiers.identifiers import IdentifierError
from verifiers.mobile import normalize_mobile


@pytest.mark.parametrize(
    "typed",
    [
        "09121234567",
        "+98 912 123 4567",
        "+989121234567",
        "00989121234567",
        "0098-912-123-4567",
        "989121234567",
        "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        "(0912) 123-4567",
        "+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷",
        "0912\u200c123\u200c4567",
    ],
)
def test_every_form_normalises(typed: str) -> None:
    assert normalize_mobile(typed) == "09121234567"


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("", "empty"),
        ("0912123456", "length"),
        ("091212345678", "length"),
        ("0912abc4567", "digits"),
        ("+1 650 253 0000", "prefix"),
        ("02188776655", "prefix"),  # a Tehran landline
    ],
)
def test_bad_numbers_name_the_rule(typed: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        normalize_mobile(typed)
    assert (caught.value.field, caught.value.rule) == ("mobile", rule)
