"""Directory, newNonce, accounts and key rollover (RFC 8555 §7.1-7.3).

Stub: the protocol helper fills it.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["acme"])
