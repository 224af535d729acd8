"""ACME Renewal Information (RFC 9773). Stub: the policy helper fills it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["acme"])
