"""Rendering a login page: Jinja2 template, language, CSRF token, no-store caching."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from idp.context import Hoviyat
from idp.login import csrf, keys
from idp.login.i18n import MESSAGES, Language, isolate_latin, translate
from idp.problems import Problem

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    # The templates ship with the code: no file-system check on every page.
    auto_reload=False,
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
    path: str = request.scope["path"]
    return path if path.startswith("/login") else "/login"


def _body(
    template: str,
    language: Language,
    title_key: str,
    path: str,
    csrf_token: str,
    interaction_id: str | None,
    errors: dict[str, str] | None,
    values: dict[str, str] | None,
    context: dict[str, Any],
) -> str:
    other = Language(language.other, "", language.code)
    context.setdefault("switch_url", page_url(path, other, interaction_id))
    return _environment.get_template(template).render(
        lang=language,
        t=lambda key, **values_: isolate_latin(translate(key, language, **values_), language),
        title=translate(title_key, language),
        csrf_token=csrf_token,
        interaction_id=interaction_id,
        errors={name: isolate_latin(text, language) for name, text in (errors or {}).items()},
        values=values or {},
        **context,
    )


# A blank form differs from one visitor to the next only by its CSRF token and
# interaction id, yet rendering it cost about 240 µs (dozens of escapes and
# macro calls) and every login shows one. Such a page is rendered once with
# these marks in their place and the real values are put in by replacement.
# The marks are random per process, so no page text can contain one, and are
# made of characters that neither HTML escaping nor URL encoding changes; only
# values of the same characters are put in (tokens and ids always are).
_MARK = secrets.token_hex(16)
_CSRF_MARK = f"csrf{_MARK}"
_INTERACTION_MARK = f"interaction{_MARK}"
_UNCHANGED_BY_ESCAPING = re.compile(r"[A-Za-z0-9_-]{1,100}")
_BLANK_FORMS: dict[tuple[Any, ...], str] = {}


def _blank_form(
    template: str,
    language: Language,
    title_key: str,
    path: str,
    interaction: bool,
    context: dict[str, str],
) -> str:
    key = (template, language, title_key, path, interaction, tuple(sorted(context.items())))
    body = _BLANK_FORMS.get(key)
    if body is None:
        interaction_id = _INTERACTION_MARK if interaction else None
        body = _body(
            template, language, title_key, path, _CSRF_MARK, interaction_id, None, None, context
        )
        if len(_BLANK_FORMS) > 1000:  # one per client, language and page: never near
            _BLANK_FORMS.clear()
        _BLANK_FORMS[key] = body
    return body


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
    blank: bool = False,
    switch_url: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A login page; ``blank``: a form with nothing typed in and no error, whose
    other ``context`` values are strings that say nothing about the visitor
    (such a page is rendered once per client and language, see _blank_form)."""
    hoviyat = hoviyat_of(request)
    token, new_cookie = csrf.token_for(
        request, hoviyat.settings, keys.derived_key(hoviyat.secrets, keys.CSRF)
    )
    path = _page_path(request)
    if switch_url is not None:
        context["switch_url"] = switch_url
    if (
        blank
        and not errors
        and not values
        and _UNCHANGED_BY_ESCAPING.fullmatch(token)
        and (interaction_id is None or _UNCHANGED_BY_ESCAPING.fullmatch(interaction_id))
    ):
        body = _blank_form(
            template, language, title_key, path, interaction_id is not None, context
        ).replace(_CSRF_MARK, token)
        if interaction_id is not None:
            body = body.replace(_INTERACTION_MARK, interaction_id)
    else:
        body = _body(
            template, language, title_key, path, token, interaction_id, errors, values, context
        )
    response = HTMLResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})
    if new_cookie is not None:
        csrf.set_cookie(response, hoviyat.settings, new_cookie)
    return response


def page(
    template: str,
    language: Language,
    *,
    title_key: str,
    switch_url: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page that carries no form needing a CSRF token (the clerk's attestation check):
    rendered by the same templates and catalogue as the login pages, no cookie set."""
    context["switch_url"] = switch_url
    body = _body(template, language, title_key, "", "", None, None, None, context)
    return HTMLResponse(body, status_code=status_code, headers=NO_STORE)


def message(
    request: Request,
    language: Language,
    message_key: str,
    status_code: int,
    *,
    headers: dict[str, str] | None = None,
    interaction_id: str | None = None,
    continue_url: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page that only tells something; with ``interaction_id`` it offers to go back
    to the app, with ``continue_url`` to go on with the login."""
    return render(
        request,
        "message.html",
        language,
        title_key="error.title" if status_code >= 400 else "site",
        status_code=status_code,
        headers=headers,
        interaction_id=interaction_id,
        continue_url=continue_url,
        message=isolate_latin(translate(message_key, language, **values), language),
    )


def problem_page(request: Request, problem: Problem, language: Language) -> Response:
    """A refusal where a person's browser may land (``/authorize/complete``, ``/logout``).

    A browser (``Accept: text/html``) gets the error page ``/authorize`` shows,
    in the citizen's language (Persian first); a program keeps RFC 9457 problem JSON.
    """
    if "text/html" not in request.headers.get("accept", "").lower():
        return problem.response(instance=request.url.path)
    key = f"err.problem.{problem.slug}"
    return message(request, language, key if key in MESSAGES else "err.problem", problem.status)


def see_other(url: str) -> RedirectResponse:
    """303 after a POST, so that reload or back never re-submits the form (PRG)."""
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


def csrf_ok(request: Request, token: str | None) -> bool:
    hoviyat = hoviyat_of(request)
    key = keys.derived_key(hoviyat.secrets, keys.CSRF)
    return csrf.is_valid(request, hoviyat.settings, key, token)
