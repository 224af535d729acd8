"""The console's home page: who is signed in, with which roles."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from idp.console.framework import ConsoleUser, console_user, render

router = APIRouter(include_in_schema=False)


@router.get("")
def home(request: Request, user: ConsoleUser = Depends(console_user)) -> HTMLResponse:
    roles = sorted(role.value for role in user.roles)
    return render(request, "home.html", {"roles": roles}, title_key="console.home")
