"""Tracking codes (کد پیگیری, bylaw Article 6): unique, time-ordered, readable aloud.

26 characters of Crockford base32: 48 bits of milliseconds since the epoch and
80 random bits (the ULID layout), so codes sort by time and never collide in
practice across processes and hosts.
"""

from __future__ import annotations

import base64
import time

from idp import randomness

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base32 (RFC 4648 §6) digit for digit into Crockford's alphabet.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_tracking_code() -> str:
    value = (int(time.time() * 1000) << 80) | randomness.randbits(80)
    # 20 octets encode to 32 base32 digits without padding; the 128-bit value
    # sits in the last 26 (130 bits, the top two always zero), as in ULID.
    digits = base64.b32encode(value.to_bytes(20, "big"))[6:]
    return digits.translate(_TO_CROCKFORD).decode("ascii")
