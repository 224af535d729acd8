"""The ACME server's routes, one router for the features table (:mod:`idp.features`)."""

from __future__ import annotations

from fastapi import APIRouter

from idp.acme import account_routes, order_routes, rfc9773

router = APIRouter()
router.include_router(account_routes.router)
router.include_router(order_routes.router)
router.include_router(rfc9773.router)
