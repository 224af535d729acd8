"""How many rows of one legacy file may name the same person.

A legacy table lists a person a few times at most (two accounts, a moved
address). A file naming one national code thousands of times is a way
around the per-subject rate limits of the verification API: every row is a
registry lookup and an entry in that citizen's access history. Rows beyond
``HOVIYAT_RECONCILIATION_MAX_ROWS_PER_SUBJECT`` for one national code are
therefore not looked up: they are reported ``not_checked`` with the reason
``duplicate-subject`` (collapsed onto the rows before them, which carry the
answer), and the job goes on.

Counting uses a count-min sketch (two rows of saturating byte counters
indexed by a keyed BLAKE2b of the code) so memory stays at a fixed 16 MiB
whatever the file size; a code is over quota only when both its counters
are, which for distinct codes needs two independent collisions.
"""

from __future__ import annotations

import hashlib
import secrets

_BITS = 23
_MASK = (1 << _BITS) - 1
_SATURATED = 255


class SubjectQuota:
    def __init__(self, max_rows_per_subject: int) -> None:
        if not 1 <= max_rows_per_subject < _SATURATED:
            raise ValueError(f"max_rows_per_subject must be 1..{_SATURATED - 1}")
        self.limit = max_rows_per_subject
        # A fresh key per run: nobody can craft codes that collide on purpose.
        self._key = secrets.token_bytes(16)
        self._first = bytearray(1 << _BITS)
        self._second = bytearray(1 << _BITS)

    def admit(self, national_code: str) -> bool:
        """Count one more row for ``national_code``; False once it is over the limit."""
        digest = hashlib.blake2b(national_code.encode(), digest_size=8, key=self._key).digest()
        value = int.from_bytes(digest, "big")
        first, second = value & _MASK, (value >> 32) & _MASK
        seen = min(self._first[first], self._second[second])
        if self._first[first] < _SATURATED:
            self._first[first] += 1
        if self._second[second] < _SATURATED:
            self._second[second] += 1
        return seen < self.limit
