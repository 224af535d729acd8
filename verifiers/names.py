"""Persian name normalisation for comparisons (design notes, "Names").

Registry records, agency databases and keyboards disagree on the letter forms
of the same name: Arabic yeh/kaf (ي ك) against Persian ones (ی ک), optional
diacritics, tatweel used for justification, and ZWNJ, space or nothing between
the parts of a compound name (عبدالله / عبد الله, علی‌اکبر / علی اکبر). Names
are compared after folding all of these; nothing here is ever stored.
"""

from __future__ import annotations

import re
import unicodedata

# Arabic letter forms to the Persian ones the civil registry uses.
_LETTERS = str.maketrans(
    {
        "\u064a": "\u06cc",  # ARABIC LETTER YEH -> FARSI YEH
        "\u0649": "\u06cc",  # ALEF MAKSURA -> FARSI YEH
        "\u0643": "\u06a9",  # ARABIC LETTER KAF -> KEHEH
    }
)
# Harakat (fathatan..sukun and the rarer marks up to U+065F), superscript alef,
# and tatweel: none of them changes which name is written.
_MARKS = re.compile("[\u064b-\u065f\u0670\u0640]")
# ZWNJ (and a stray ZWJ / ZWSP) separate the parts of a compound name like a space.
_JOINERS = re.compile("[\u200b\u200c\u200d]")
_BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize_name(text: str) -> str:
    """The comparison form of a name.

    NFKC first (folds Arabic presentation forms such as ﻙ to their letters),
    then Arabic ي/ى/ك to Persian ی/ک, diacritics and tatweel removed, bidi
    marks removed, ZWNJ folded to a space, runs of spaces collapsed, ends
    stripped, Latin letters case-folded.
    """
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_LETTERS)
    text = _MARKS.sub("", text)
    text = _BIDI.sub("", text)
    text = _JOINERS.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    return text.casefold()


def names_match(a: str, b: str) -> bool:
    """Same name once normalised, also ignoring where compound names are split.

    Spaces are dropped for the comparison because عبدالله, عبد الله and
    عبد‌الله are one name written three ways. Two empty names never match.
    """
    left = normalize_name(a).replace(" ", "")
    right = normalize_name(b).replace(" ", "")
    return bool(left) and left == right
