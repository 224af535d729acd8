"""The ACME server's routes, one router for the features table (:mod:`idp.features`).

The protocol resources under ``/acme/`` are left out of the OpenAPI document:
their contract is RFC 8555 (JWS bodies, ``urn:ietf:params:acme:error`` problems,
``Replay-Nonce``), which that document cannot state, and ACME clients read the
directory, not OpenAPI. The administrators' EAB key API is a ``/v1`` API like
the others and is documented.
"""

from __future__ import annotations

from fastapi import APIRouter

from idp.acme import account_routes, order_routes, rfc9773
from idp.http import acme_admin

router = APIRouter()
router.include_router(account_routes.router, include_in_schema=False)
router.include_router(order_routes.router, include_in_schema=False)
router.include_router(rfc9773.router, include_in_schema=False)
# EAB keys for administrators (role admin): /v1/acme/eab-keys.
router.include_router(acme_admin.router)
