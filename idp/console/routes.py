"""Every router of the console, mounted by the app under ``/console``.

A part of the console adds its router here, one line each; its routes are
then served at ``/console<path>``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from idp.console import (
    approvals,
    audit_pages,
    certificates_pages,
    clients_manage,
    clients_pages,
    pages,
    roles_page,
    signin,
)
from idp.console.framework import ConsoleResponse
from idp.counters import pages as counter_pages

ROUTERS: list[APIRouter] = [
    signin.router,
    pages.router,
    roles_page.router,
    approvals.router,
    clients_pages.router,
    audit_pages.router,
    counter_pages.router,
    certificates_pages.router,
    clients_manage.router,
]


def mount(app: FastAPI) -> None:
    """Serve :data:`ROUTERS` under /console, and answer :class:`ConsoleResponse` with its page."""
    for router in ROUTERS:
        app.include_router(router, prefix="/console")

    @app.exception_handler(ConsoleResponse)
    async def console_response(_request: Request, raised: ConsoleResponse) -> Response:
        return raised.response
