"""The ACME server's routes, one router for the features table (:mod:`idp.features`)."""

from __future__ import annotations

from fastapi import APIRouter

from idp.acme import account_routes, order_routes, rfc9773
from idp.http import acme_admin

router = APIRouter()
router.include_router(account_routes.router)
router.include_router(order_routes.router)
router.include_router(rfc9773.router)
# EAB keys for administrators (role admin): /v1/acme/eab-keys.
router.include_router(acme_admin.router)
