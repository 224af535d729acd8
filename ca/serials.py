"""Certificate serial numbers (RFC 5280 section 4.1.2.2, CA/B Forum BR 7.1).

127 bits from the OS CSPRNG (``secrets``), top bit clear so the DER INTEGER is
positive and at most 16 octets, well inside the 20-octet limit and above the
64 bits of entropy the Baseline Requirements ask for. Uniqueness is not left
to luck: the serial is the primary key of ``certificates``.

The one text form (``serial_hex``) is lowercase hex, zero-padded to an even
number of digits; :func:`parse_serial` accepts any case, colons and padding.
"""

from __future__ import annotations

import secrets


def new_serial() -> int:
    while True:
        serial = secrets.randbits(127)
        # Keep at least 64 significant bits so every serial really carries >= 64 random bits.
        if serial >> 64:
            return serial


def serial_hex(serial: int) -> str:
    text = format(serial, "x")
    return "0" + text if len(text) % 2 else text


def parse_serial(text: str) -> int | None:
    """The serial named by ``text`` (hex, optional colons), or None if it is not one."""
    cleaned = text.strip().replace(":", "").lower()
    if not cleaned or len(cleaned) > 42 or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    value = int(cleaned, 16)
    return value if value > 0 else None
