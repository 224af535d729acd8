"""Clients and their service policies (administrators only): list, one client, disable.

Disabling is immediate (the same effect as ``POST /v1/admin/clients/<id>/disable``:
no new tokens, its tokens refused within a second) and audited as
``client_changed`` with the administrator's keyed digest. The console's own
client cannot be disabled from the console: that would lock every
administrator out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from idp.audit.log import AuditEvent, append
from idp.console import client as console_client
from idp.console import clients_manage
from idp.console.framework import (
    NO_STORE,
    ConsoleUser,
    add_nav_link,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.roles import Role
from idp.storage import clients as client_store
from idp.storage.models import Client
from idp.tracking import new_tracking_code
from policies.service_policy import ServicePolicy

router = APIRouter(include_in_schema=False)
add_nav_link("/console/clients", "console.clients", Role.ADMIN)
NOTICE = "console.clients.disabled_now"


def _row(client: Client, policies: dict[str, ServicePolicy], english: bool) -> dict[str, Any]:
    policy = policies.get(client.service_code)
    return {
        "client_id": client.client_id,
        "name": client.name,
        "service_code": client.service_code,
        "policy_title": (policy.title_en if english else policy.title_fa) if policy else "",
        "grant_types": ", ".join(client.grant_types or ()),
        "auth_method": client.token_endpoint_auth_method,
        "disabled": client.disabled,
    }


@router.get("/clients")
def clients_page(
    request: Request, _user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.read() as db:
        clients = client_store.all_clients(db)
    english = language_of(request).code == "en"
    rows = [_row(c, hoviyat.policies, english) for c in sorted(clients, key=lambda c: c.client_id)]
    return render(request, "clients.html", {"clients": rows}, title_key="console.clients")


def _not_found(request: Request) -> HTMLResponse:
    return render(
        request,
        "message.html",
        {
            "message_key": "console.clients.not_found",
            "is_error": True,
            "link_path": "/console/clients",
            "link_key": "console.clients",
        },
        status_code=404,
        title_key="console.error.title",
    )


@router.get("/clients/{client_id}")
def client_page(
    request: Request, client_id: str, _user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.read() as db:
        client = client_store.get_client(db, client_id[:200])
        extras = clients_manage.page_extras(db, client, datetime.now(UTC)) if client else {}
    if client is None:
        return _not_found(request)
    english = language_of(request).code == "en"
    policy = hoviyat.policies.get(client.service_code)
    notice = request.query_params.get("notice")
    return render(
        request,
        "client.html",
        {
            "client": _row(client, hoviyat.policies, english),
            "redirect_uris": list(client.redirect_uris or ()),
            "roles": list(client.roles or ()),
            "policy": policy,
            "operations": sorted(policy.operations) if policy else [],
            "person_disclosure": sorted(policy.person_disclosure) if policy else [],
            "entity_disclosure": sorted(policy.entity_disclosure) if policy else [],
            "may_disable": not client.disabled and client.client_id != console_client.CLIENT_ID,
            "notice_key": notice if notice in (NOTICE, *clients_manage.NOTICES) else None,
            **extras,
        },
        title_key="console.clients.one",
    )


@router.post("/clients/{client_id}/disable")
async def disable_client(
    request: Request, client_id: str, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    check_csrf(request, await request.form())
    return await run_in_threadpool(_disable, request, client_id[:200], user)


def _disable(request: Request, client_id: str, user: ConsoleUser) -> Response:
    hoviyat = hoviyat_of(request)
    if client_id == console_client.CLIENT_ID:
        return render(
            request,
            "message.html",
            {
                "message_key": "console.clients.own_client",
                "is_error": True,
                "link_path": f"/console/clients/{client_id}",
                "link_key": "console.clients.one",
            },
            status_code=400,
            title_key="console.error.title",
        )
    with hoviyat.db.session() as db:
        client = client_store.get_client(db, client_id)
        if client is None:
            found = False
        else:
            found = True
            if client_store.set_disabled(db, client):
                append(
                    db,
                    AuditEvent(
                        tracking_code=new_tracking_code(),
                        event_type="client_changed",
                        actor_type="console_user",
                        actor_id=user.person_key,
                        outcome="ok",
                        operation="disable",
                        detail={"client_id": client_id, "via": "console"},
                    ),
                )
    if not found:
        return _not_found(request)
    hoviyat.client_directory.forget(client_id)
    url = href(language_of(request), f"/console/clients/{client_id}", notice=NOTICE)
    return RedirectResponse(url, 303, headers=NO_STORE)
