"""Digit scripts and separators as citizens type them (design notes, "Identifiers").

Iranian forms are filled in with ASCII digits, Persian digits (۰–۹, U+06F0..)
or Arabic-Indic digits (٠–٩, U+0660..), often with spaces, dashes and the
invisible characters a Persian keyboard or a copy from a PDF leaves behind.
Everything here is a pure string transformation; validation lives in
:mod:`verifiers.identifiers`.
"""

from __future__ import annotations

import re

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"

_TO_ASCII = str.maketrans(PERSIAN_DIGITS + ARABIC_INDIC_DIGITS, "0123456789" * 2)
_TO_PERSIAN = str.maketrans("0123456789", PERSIAN_DIGITS)

# Invisible characters that carry no meaning inside an identifier: zero width
# space/non-joiner/joiner, LRM/RLM and the Arabic letter mark, the bidi
# embeddings and isolates a right-to-left editor inserts, and the BOM.
ZERO_WIDTH = (
    "\u200b\u200c\u200d\u200e\u200f\u061c"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
_INVISIBLE = re.compile(f"[{ZERO_WIDTH}]")
# Hyphen-minus, hyphen, non-breaking hyphen, figure dash, en/em dash, minus sign.
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u2212" + ZERO_WIDTH + "]")


def translate_digits(text: str) -> str:
    """Persian and Arabic-Indic digits to ASCII; every other character kept."""
    return text.translate(_TO_ASCII)


def strip_invisible(text: str) -> str:
    """Remove zero-width and bidi control characters, keep everything else."""
    return _INVISIBLE.sub("", text)


def normalize_digits(text: str) -> str:
    """ASCII digits, without spaces, dashes or zero-width characters.

    ``"۰۴۹۹-۳۷۰۸۹۹"`` and ``"\u200f0499 370 899"`` both give ``"0499370899"``.
    Characters that are neither digits nor separators are kept, so the
    validator after this can name them.
    """
    return _SEPARATORS.sub("", translate_digits(text))


def to_persian_digits(text: str) -> str:
    """ASCII digits to Persian ones, for display on Persian pages."""
    return text.translate(_TO_PERSIAN)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of 0-9 only (``str.isdigit`` also accepts ², ৩...)."""
    return bool(text) and text.isascii() and text.isdigit()
