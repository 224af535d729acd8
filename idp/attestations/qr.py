"""What a counter clerk scans or types: a short verification code, and its QR code.

A code is 80 random bits in Crockford base32, shown as four groups of four
(``K7Q2-9MXD-4HNB-R8TW``): short enough to read aloud, too many to guess. It
is typed case-insensitively, with or without dashes, in any digit script;
Crockford's ``I``/``L``→1 and ``O``→0 absorb misreadings. The QR code carries
the check page URL with the code, so a phone camera opens the verdict.
"""

from __future__ import annotations

import io
import re
import secrets
from urllib.parse import urlencode

import segno

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_MISREAD = str.maketrans("ILO", "110")
_FORMAT = re.compile(f"^[{_ALPHABET}]{{{CODE_LENGTH}}}$")


def new_verification_code() -> str:
    value = secrets.randbits(5 * CODE_LENGTH)
    chars = [_ALPHABET[(value >> (5 * i)) & 31] for i in range(CODE_LENGTH)]
    return "-".join("".join(chars[i : i + 4]) for i in range(0, CODE_LENGTH, 4))


def normalise_code(text: str) -> str | None:
    """The canonical code (grouped) for what a person typed, or None if it cannot be one."""
    cleaned = re.sub(r"[\s\-\u200c\u200b\u200d_]", "", text.translate(_DIGITS)).upper()
    cleaned = cleaned.translate(_MISREAD)
    if not _FORMAT.match(cleaned):
        return None
    return "-".join(cleaned[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def check_url(issuer: str, code: str) -> str:
    return f"{issuer.rstrip('/')}/attestations/check?{urlencode({'code': code})}"


def qr_png(text: str, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_svg(text: str, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        buffer, kind="svg", scale=scale, border=4, xmldecl=True, svgns=True
    )
    return buffer.getvalue()
