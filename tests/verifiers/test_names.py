"""Persian name normalisation (design notes, "Names")."""

from __future__ import annotations

import pytest

from verifiers.names import names_match, normalize_name


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("علي", "علی"),  # Arabic yeh
        ("كاظم", "کاظم"),  # Arabic kaf
        ("مصطفى", "مصطفی"),  # alef maksura
        ("مُحَمَّد", "محمد"),  # harakat
        ("محمـــد", "محمد"),  # tatweel
        ("علی\u200cاکبر", "علی اکبر"),  # ZWNJ folded to space
        ("  علی   اکبر  ", "علی اکبر"),
        ("\u200fزهرا\u200e", "زهرا"),  # bidi marks
        ("ﻛﺎﻇﻢ", "کاظم"),  # presentation forms
        ("Ali", "ali"),
    ],
)
def test_normalize_name(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("علي‌اكبر", "علی اکبر"),
        ("عبدالله", "عبد الله"),
        ("عبدالله", "عبد\u200cالله"),
        ("فاطمه‌زهرا", "فاطمه زهرا"),
        ("مُصطَفى", "مصطفی"),
    ],
)
def test_same_name_written_differently(a: str, b: str) -> None:
    assert names_match(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("علی", "علیرضا"),
        ("حسن", "حسین"),
        ("", ""),
        ("\u200c", " "),
    ],
)
def test_different_or_empty_names_do_not_match(a: str, b: str) -> None:
    assert not names_match(a, b)
