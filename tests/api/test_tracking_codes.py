"""Tracking codes: the ULID layout in Crockford base32 (idp.tracking)."""

from __future__ import annotations

import time
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from idp import tracking
from idp.tracking import new_tracking_code

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _decode(code: str) -> int:
    value = 0
    for char in code:
        value = value * 32 + CROCKFORD.index(char)
    return value


@given(millis=st.integers(0, 2**48 - 1), random=st.integers(0, 2**80 - 1))
def test_a_code_is_48_bits_of_time_then_80_random_bits(millis: int, random: int) -> None:
    with (
        mock.patch.object(tracking.time, "time", return_value=millis / 1000),
        mock.patch.object(tracking.randomness, "randbits", return_value=random),
    ):
        code = new_tracking_code()
    assert len(code) == 26 and set(code) <= set(CROCKFORD)
    value = _decode(code)
    assert value & (2**80 - 1) == random
    assert abs((value >> 80) - millis) <= 1  # float milliseconds may round down


def test_codes_sort_by_time_and_do_not_repeat() -> None:
    codes = []
    for _ in range(3):
        codes += [new_tracking_code() for _ in range(1000)]
        time.sleep(0.002)
    assert len(set(codes)) == len(codes)
    assert [code[:10] for code in codes] == sorted(code[:10] for code in codes)
