"""Rendering a login page: Jinja2 template, language, CSRF token, no-store caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from idp.context import Hoviyat
from idp.login import csrf, keys
from idp.login.i18n import Language, translate

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Login pages show personal data and one-time state: never cached, never framed.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def hoviyat_of(request: Request) -> Hoviyat:
    hoviyat: Hoviyat = request.app.state.hoviyat
    return hoviyat


def page_url(path: str, language: Language, interaction_id: str | None = None) -> str:
    query: dict[str, str] = {}
    if interaction_id:
        query["interaction"] = interaction_id
    query["lang"] = language.code
    return f"{path}?{urlencode(query)}"


def _page_path(request: Request) -> str:
    # The first page may be served by /authorize itself; its language switch
    # leads to the same step at /login.
    path = request.url.path
    return path if path.startswith("/login") else "/login"


def render(
    request: Request,
    template: str,
    language: Language,
    *,
    title_key: str,
    status_code: int = 200,
    interaction_id: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    token, new_cookie = csrf.token_for(
        request, hoviyat.settings, keys.derived_key(hoviyat.secrets, keys.CSRF)
    )
    other = Language(language.other, "", language.code)
    body = _environment.get_template(template).render(
        lang=language,
        t=lambda key, **values_: translate(key, language, **values_),
        title=translate(title_key, language),
        csrf_token=token,
        interaction_id=interaction_id,
        switch_url=page_url(_page_path(request), other, interaction_id),
        errors=errors or {},
        values=values or {},
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})
    if new_cookie is not None:
        csrf.set_cookie(response, hoviyat.settings, new_cookie)
    return response


def message(
    request: Request,
    language: Language,
    message_key: str,
    status_code: int,
    *,
    headers: dict[str, str] | None = None,
    interaction_id: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page that only tells something; with ``interaction_id`` it offers to go back to the app."""
    return render(
        request,
        "message.html",
        language,
        title_key="error.title" if status_code >= 400 else "site",
        status_code=status_code,
        headers=headers,
        interaction_id=interaction_id,
        message=translate(message_key, language, **values),
    )


def see_other(url: str) -> RedirectResponse:
    """303 after a POST, so that reload or back never re-submits the form (PRG)."""
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


def csrf_ok(request: Request, token: str | None) -> bool:
    hoviyat = hoviyat_of(request)
    key = keys.derived_key(hoviyat.secrets, keys.CSRF)
    return csrf.is_valid(request, hoviyat.settings, key, token)
