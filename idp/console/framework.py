"""What every console page stands on: the signed-in user, role checks, CSRF, rendering.

A page is a FastAPI route on a router in :data:`idp.console.routes.ROUTERS`
(mounted under ``/console``)::

    @router.get("/things")
    def things(request: Request, user: ConsoleUser = Depends(require_role(Role.AUDITOR))):
        return render(request, "things.html", {"things": ...})

    @router.post("/things")
    async def add(request: Request, user: ConsoleUser = Depends(require_role(Role.ADMIN))):
        form = await request.form()
        check_csrf(request, form)  # every POST form; {{ csrf_field }} in its template
        ...

A visitor who is not signed in is sent to the console's sign-in; one without
the role gets a 403 page, and the refusal is appended to the audit log, as is
a form without the right CSRF token. Pages are Persian unless ``?lang=en``;
every link and form action keeps the language through ``href(path)``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from idp.audit.log import AuditEvent, append
from idp.console import i18n
from idp.console import sessions as console_sessions
from idp.console.roles import Role, roles_of
from idp.context import Hoviyat
from idp.login import keys
from idp.login.i18n import EN, FA, Language, isolate_latin
from idp.tracking import new_tracking_code

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Console pages show people's data and carry one-time tokens: never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# No script at all, styles from our own origin only, forms post only to us.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
CSRF_KEY_LABEL = b"hoviyat/console/csrf/v1"
OPERATION_LENGTH = 64  # idp.storage.models.AuditEntry.operation
CSRF_FIELD = "csrf_token"

_loader = FileSystemLoader([os.fspath(TEMPLATES)])
_environment = Environment(
    loader=_loader,
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def add_template_folder(path: Path | str) -> None:
    """Let :func:`render` find templates in ``path`` too (after the console's own folder).

    Template names are shared: use a sub-folder or a prefix of your own
    (``audit/search.html``) so no two parts define the same name.
    """
    folder = os.fspath(path)
    if folder not in _loader.searchpath:
        _loader.searchpath.append(folder)


@dataclass(frozen=True)
class ConsoleUser:
    person_key: str  # subject_hash of the national code (never the code in clear)
    display_name: str
    acr: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class NavLink:
    path: str  # under /console, e.g. "/console/roles"
    label_key: str  # a console message key
    roles: frozenset[Role] = field(default_factory=frozenset)


NAV: list[NavLink] = []


def add_nav_link(path: str, label_key: str, *roles: Role) -> None:
    """Show a link in every page's navigation to users holding one of ``roles``."""
    if all(link.path != path for link in NAV):
        NAV.append(NavLink(path, label_key, frozenset(roles)))


class ConsoleResponse(Exception):
    """Ends a request with ``response`` (a redirect to sign-in, a refusal page).

    Raised from dependencies, where a response cannot be returned; the handler
    :func:`idp.console.routes.mount` installs answers with it.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def hoviyat_of(request: Request) -> Hoviyat:
    hoviyat: Hoviyat = request.app.state.hoviyat
    return hoviyat


def language_of(request: Request) -> Language:
    """Persian unless the page was asked for in English (``?lang=en``)."""
    return EN if request.query_params.get("lang") == "en" else FA


def href(language: Language, path: str, **query: str) -> str:
    """``path`` with ``query`` and the page's language (only English is named)."""
    values = {key: value for key, value in query.items() if value}
    if language.code == "en":
        values["lang"] = "en"
    return f"{path}?{urlencode(values)}" if values else path


def safe_return_path(candidate: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if (
        candidate
        and candidate.startswith("/console")
        and not candidate.startswith("/console/login")
        and not candidate.startswith("/console/callback")
        and "\\" not in candidate
        and len(candidate) <= 500
        and all(ch.isprintable() and not ch.isspace() for ch in candidate)
    ):
        return candidate
    return "/console"


def sign_in_url(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return href(language_of(request), "/console/login", next=safe_return_path(path))


def console_user(request: Request) -> ConsoleUser:
    """The signed-in console user (FastAPI dependency); anyone else is sent to sign in."""
    cached: ConsoleUser | None = getattr(request.state, "console_user", None)
    if cached is not None:
        return cached
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db:
        row = console_sessions.live(request, db, hoviyat.settings)
        if row is None:
            raise ConsoleResponse(RedirectResponse(sign_in_url(request), 303, headers=NO_STORE))
        user = ConsoleUser(row.person_key, row.display_name, row.acr, roles_of(db, row.person_key))
    request.state.console_user = user
    request.state.console_session_id = row.id
    return user


def audit_refusal(request: Request, user: ConsoleUser | None, reason: str, **detail: Any) -> str:
    """Append a refused console request to the audit log; returns its tracking code."""
    hoviyat = hoviyat_of(request)
    tracking_code = new_tracking_code()
    with hoviyat.db.session() as db:
        append(
            db,
            AuditEvent(
                tracking_code=tracking_code,
                event_type="console_refusal",
                actor_type="console_user",
                actor_id=user.person_key if user else None,
                outcome="refused",
                # The column holds 64 characters (PostgreSQL refuses more); the path is
                # the visitor's to choose, so its whole (bounded) text goes in the detail.
                operation=f"{request.method} {request.url.path}"[:OPERATION_LENGTH],
                detail={"reason": reason, "path": request.url.path[:512], **detail},
            ),
        )
    return tracking_code


def refusal_page(
    request: Request, message_key: str, tracking_code: str, **values: str
) -> HTMLResponse:
    return render(
        request,
        "refused.html",
        {"message_key": message_key, "message_values": values, "tracking_code": tracking_code},
        status_code=403,
        title_key="console.refused.title",
    )


def require_role(*roles: Role) -> Callable[..., ConsoleUser]:
    """A dependency yielding the user if they hold one of ``roles``; else a 403 page, audited."""
    needed = frozenset(roles)
    if not needed:
        raise ValueError("require_role needs at least one role")

    def dependency(request: Request, user: ConsoleUser = Depends(console_user)) -> ConsoleUser:
        if user.roles & needed:
            return user
        names = sorted(role.value for role in needed)
        tracking_code = audit_refusal(request, user, "missing_role", needed=names)
        language = language_of(request)
        shown = "، ".join(i18n.translate(f"console.role.{name}", language) for name in names)
        raise ConsoleResponse(
            refusal_page(request, "console.refused.role", tracking_code, roles=shown)
        )

    return dependency


def _csrf_token(request: Request) -> str | None:
    session_id: str | None = getattr(request.state, "console_session_id", None)
    if session_id is None:
        return None
    key = keys.derived_key(hoviyat_of(request).secrets, CSRF_KEY_LABEL)
    return hmac.new(key, session_id.encode("ascii"), hashlib.sha256).hexdigest()


def check_csrf(request: Request, form: Mapping[str, Any]) -> None:
    """Refuse (403 page, audited) a POST whose form lacks this session's CSRF token.

    The token is an HMAC of the server-side session id: a page of another site
    can make the browser post, but cannot read or compute the token. Call it
    after the user dependency (:func:`console_user` or :func:`require_role`).
    """
    expected = _csrf_token(request)
    sent = form.get(CSRF_FIELD)
    if expected is not None and isinstance(sent, str) and hmac.compare_digest(expected, sent):
        return
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    reason = "csrf_missing" if not sent else "csrf_invalid"
    tracking_code = audit_refusal(request, user, reason)
    raise ConsoleResponse(refusal_page(request, "console.refused.csrf", tracking_code))


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    title_key: str | None = None,
) -> HTMLResponse:
    """A console page: the template with the language, user, navigation and CSRF field.

    In templates: ``t(key, **values)`` translates, ``href(path, **query)`` keeps the
    language, ``csrf_field`` is the hidden input every POST form carries,
    ``user`` is the :class:`ConsoleUser` (None when signed out), ``lang`` the language.
    """
    language = language_of(request)
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    token = _csrf_token(request)
    csrf_field = (
        Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')  # noqa: S704
        if token
        else Markup("")
    )

    def t(key: str, **values: object) -> Markup:
        return isolate_latin(i18n.translate(key, language, **values), language)

    other = EN if language is FA else FA
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    switch_url = href(other, request.url.path, **query)
    nav = [link for link in NAV if user is not None and (not link.roles or link.roles & user.roles)]
    body = _environment.get_template(template).render(
        lang=language,
        t=t,
        href=lambda path, **q: href(language, path, **q),
        title=t(title_key or context.get("title_key", "console.site")),
        user=user,
        nav=nav,
        current_path=request.url.path,
        csrf_field=csrf_field,
        csrf_token=token or "",
        switch_url=switch_url,
        **context,
    )
    headers = {**NO_STORE, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return HTMLResponse(body, status_code=status_code, headers=headers)
