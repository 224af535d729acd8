"""The administrator's counter offices page, under ``/console/counter/offices``.

- ``GET  /counter/offices``: every office, its policy and its people.
- ``POST /counter/offices``: register a legal entity as an office with a policy.
- ``POST /counter/offices/{office}/members``: make a person a clerk or supervisor.

Membership alone lets nobody act: a clerk also needs the console role
``counter_clerk``, whose grant takes two administrators (the roles page). The
person's name shown to citizens comes from the civil registry, not from what
the administrator types.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from idp.console.framework import (
    ConsoleUser,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.roles import Role
from idp.counters.offices import OfficeRefused, add_member, register_office
from idp.counters.services import CounterService
from idp.storage import counters
from idp.storage.counters import CLERK, SUPERVISOR
from verifiers.identifiers import IdentifierError, validate_national_code
from verifiers.registry import RegistryUnavailable

# Included by :mod:`idp.counters.pages`, whose router adds the ``/counter`` prefix.
router = APIRouter(include_in_schema=False)
admin_user = require_role(Role.ADMIN)


def _page(
    request: Request, *, status_code: int = 200, error: str | None = None, notice: str | None = None
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.read() as db:
        offices = counters.all_offices(db)
        members = {o.national_id: counters.members(db, o.national_id) for o in offices}
    return render(
        request,
        "counter/offices.html",
        {
            "offices": offices,
            "members": members,
            "services": [s.value for s in CounterService],
            "roles": (CLERK, SUPERVISOR),
            "office_error": error,
            "counter_notice": notice,
        },
        status_code=status_code,
        title_key="counter.offices.title",
    )


@router.get("/offices")
def offices_page(request: Request, user: ConsoleUser = Depends(admin_user)) -> HTMLResponse:
    return _page(request, notice=request.query_params.get("done") and "counter.offices.done")


def _done(request: Request) -> Response:
    return RedirectResponse(href(language_of(request), "/console/counter/offices", done="1"), 303)


@router.post("/offices")
async def register(request: Request, user: ConsoleUser = Depends(admin_user)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    national_id = form.get("national_id")
    chosen = [s for s in form.getlist("services") if isinstance(s, str)]
    try:
        await run_in_threadpool(
            register_office,
            hoviyat_of(request),
            national_id if isinstance(national_id, str) else "",
            chosen[:10],
            operator=user.person_key,
        )
    except OfficeRefused as refused:
        return _page(request, status_code=400, error=str(refused))
    except RegistryUnavailable:
        return _page(request, status_code=503, error="the deeds registry did not answer")
    return _done(request)


def _member(request: Request, user: ConsoleUser, office_id: str, form: Any) -> Response:
    hoviyat = hoviyat_of(request)
    typed, role = form.get("national_code"), form.get("role")
    try:
        code = validate_national_code(typed if isinstance(typed, str) else "")
    except IdentifierError as error:
        return _page(request, status_code=400, error=error.message)
    try:
        person = hoviyat.registries.civil.person(code)
    except RegistryUnavailable:
        return _page(request, status_code=503, error="the civil registry did not answer")
    if person is None or not person.alive:
        return _page(
            request, status_code=400, error="the civil registry has no living person with this code"
        )
    try:
        add_member(
            hoviyat,
            office_id[:11],
            code,
            role if isinstance(role, str) else "",
            f"{person.first_name} {person.last_name}",
            operator=user.person_key,
        )
    except OfficeRefused as refused:
        return _page(request, status_code=400, error=str(refused))
    return _done(request)


@router.post("/offices/{office_id}/members")
async def member(
    request: Request, office_id: str, user: ConsoleUser = Depends(admin_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    return await run_in_threadpool(_member, request, user, office_id, form)
