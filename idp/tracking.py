"""Tracking codes (کد پیگیری, bylaw Article 6): unique, time-ordered, readable aloud.

26 characters of Crockford base32: 48 bits of milliseconds since the epoch and
80 random bits (the ULID layout), so codes sort by time and never collide in
practice across processes and hosts.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_tracking_code() -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
