"""Random bytes for identifiers that are not secrets, drawn from the OS in blocks.

Every access token's ``jti`` and every tracking code needs a few random
bytes, and each
``os.urandom`` call is a system call that also lets go of the GIL, so the
event loop then waits for the writer thread to hand it back. Reading 4 KiB at
a time and slicing it keeps the same source (the kernel's CSPRNG, as the
``secrets`` module uses) at one call per few hundred identifiers. Each thread
has its own block, and a forked child starts with none, so no two processes
or threads ever hand out the same bytes. Secrets (codes, refresh tokens,
cookies) still come from :mod:`secrets` directly: no future secret should sit
in memory before it is used.
"""

from __future__ import annotations

import base64
import os
import threading

_BLOCK = 4096


class _Pool(threading.local):
    def __init__(self) -> None:
        self.block = b""
        self.offset = 0


_pool = _Pool()


def _forget_in_child() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_in_child)


def token_bytes(count: int) -> bytes:
    """``count`` random bytes, as :func:`secrets.token_bytes`."""
    pool = _pool
    if count > _BLOCK:
        return os.urandom(count)
    if pool.offset + count > len(pool.block):
        pool.block, pool.offset = os.urandom(_BLOCK), 0
    start = pool.offset
    pool.offset = start + count
    return pool.block[start : start + count]


def token_urlsafe(count: int) -> str:
    """``count`` random bytes in base64url without padding, as :func:`secrets.token_urlsafe`."""
    return base64.urlsafe_b64encode(token_bytes(count)).rstrip(b"=").decode("ascii")


def randbits(bits: int) -> int:
    """A random integer of ``bits`` bits, as :func:`secrets.randbits`."""
    value = int.from_bytes(token_bytes((bits + 7) // 8), "big")
    return value >> (-bits % 8)
