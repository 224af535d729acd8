"""Orders, authorizations, challenges, finalize, download, revocation (RFC 8555 §7.4-7.6).

Stub: the orders helper fills it.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["acme"])
