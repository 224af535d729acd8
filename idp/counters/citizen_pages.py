"""The citizen's own confirmation page for a counter's assisted session (public, no login).

- ``GET  /counter/confirm/{token}``: who asks (office, clerk), for what (the
  office's listed services), a check code that the clerk's screen shows too,
  "Confirm with passkey" and "This is not me".
- ``POST /counter/confirm/{token}/options`` and ``.../passkey``: the WebAuthn
  ceremony (JSON, for the page's one script, ``/counter/static/confirm-passkey.js``).
- ``POST /counter/confirm/{token}/not-me``: the citizen refuses; the waiting ends.
- ``GET  /counter/confirmed``: "Confirmed; you may return to the clerk".

The token in the path is the capability (128 random bits, stored only as a
digest, single use, minutes long: :mod:`idp.counters.remote_presence`), so
these forms need no cookie: a forger would need the token the citizen scanned.
Rendered with the login's templates and look, Persian first (``?lang=en``),
under the login's high-page policy (this origin's one script, nothing inline).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from idp.counters import remote_presence
from idp.counters.words import CITIZEN_MESSAGES
from idp.login import i18n as login_i18n
from idp.login.forms import HIGH_PAGE_CSP
from idp.login.i18n import Language, digits_for, isolate_latin, pick_language
from idp.login.render import NO_STORE, TEMPLATES, hoviyat_of
from idp.login.webauthn import MAX_CREDENTIAL_BYTES

log = logging.getLogger("hoviyat.counters")

STATIC = Path(__file__).parent / "static"
SCRIPT = "/counter/static/confirm-passkey.js"

router = APIRouter(include_in_schema=False)

_environment = Environment(
    loader=ChoiceLoader(
        [FileSystemLoader(Path(__file__).parent / "templates"), FileSystemLoader(TEMPLATES)]
    ),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)

FormStr = Annotated[str, Form()]


def _translate(key: str, language: Language, **values: object) -> str:
    if key in CITIZEN_MESSAGES:
        fa, en = CITIZEN_MESSAGES[key]
        text = fa if language.code == "fa" else en
        return text.format(**values) if values else text
    return login_i18n.translate(key, language, **values)


def _page(
    language: Language,
    template: str,
    title_key: str,
    switch_url: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    body = _environment.get_template(template).render(
        lang=language,
        t=lambda key, **values: isolate_latin(_translate(key, language, **values), language),
        title=_translate(title_key, language),
        site_key="counter.citizen.site",
        switch_url=switch_url,
        **context,
    )
    headers = {**NO_STORE, "Content-Security-Policy": HIGH_PAGE_CSP}
    return HTMLResponse(body, status_code=status_code, headers=headers)


def _path(token: str, language: Language, tail: str = "") -> str:
    return f"/counter/confirm/{token}{tail}?lang={language.code}"


def _dead(language: Language, token: str) -> HTMLResponse:
    return _page(
        language,
        "citizen/message.html",
        "counter.citizen.dead.title",
        f"/counter/confirm/{token}?lang={language.other}",
        status_code=404,
        message_key="counter.citizen.dead",
    )


@router.get("/counter/static/confirm-passkey.js")
def confirm_script() -> FileResponse:
    return FileResponse(STATIC / "confirm-passkey.js", media_type="text/javascript")


@router.get("/counter/confirmed")
def confirmed(lang: str | None = None) -> HTMLResponse:
    language = pick_language(lang, None)
    return _page(
        language,
        "citizen/message.html",
        "counter.citizen.done.title",
        f"/counter/confirmed?lang={language.other}",
        message_key="counter.citizen.done",
    )


@router.get("/counter/confirm/{token}")
async def confirm_page(request: Request, token: str, lang: str | None = None) -> HTMLResponse:
    language = pick_language(lang, None, request.headers.get("accept-language"))
    token = token[:80]
    asked = await run_in_threadpool(remote_presence.ask, hoviyat_of(request), token)
    if asked is None:
        return _dead(language, token)
    services = ", ".join(_translate(f"counter.service.{s}", language) for s in asked.services)
    return _page(
        language,
        "citizen/confirm.html",
        "counter.citizen.title",
        _path(token, Language(language.other, "", language.code)),
        office=asked.office_name,
        clerk=asked.clerk_name,
        services=services,
        check_code=digits_for(asked.check_code, language),
        options_url=_path(token, language, "/options"),
        passkey_url=_path(token, language, "/passkey"),
        not_me_url=_path(token, language, "/not-me"),
        script=SCRIPT,
    )


def _problem(status: int, detail: str) -> JSONResponse:
    body = {"title": "Passkey refused", "status": status, "detail": detail}
    return JSONResponse(
        body, status_code=status, headers=NO_STORE, media_type="application/problem+json"
    )


@router.post("/counter/confirm/{token}/options")
async def confirm_options(request: Request, token: str) -> Response:
    options = await run_in_threadpool(remote_presence.options, hoviyat_of(request), token[:80])
    if options is None:
        return _problem(404, "link_unknown")
    return JSONResponse(options, headers=NO_STORE)


@router.post("/counter/confirm/{token}/passkey")
async def confirm_passkey(
    request: Request, token: str, credential: FormStr = "", lang: str | None = None
) -> Response:
    language = pick_language(lang, None)
    if len(credential) > MAX_CREDENTIAL_BYTES:
        credential = ""
    try:
        reason = await run_in_threadpool(
            remote_presence.confirm, hoviyat_of(request), token[:80], credential
        )
    except remote_presence.LinkDead:
        return _problem(404, "link_unknown")
    if reason is not None:
        return _problem(403 if reason == "sign_count_regressed" else 400, reason)
    return JSONResponse({"next": f"/counter/confirmed?lang={language.code}"}, headers=NO_STORE)


@router.post("/counter/confirm/{token}/not-me")
async def not_me(request: Request, token: str, lang: str | None = None) -> HTMLResponse:
    language = pick_language(lang, None)
    ended = await run_in_threadpool(remote_presence.not_me, hoviyat_of(request), token[:80])
    if not ended:
        return _dead(language, token[:80])
    return _page(
        language,
        "citizen/message.html",
        "counter.citizen.refused.title",
        f"/counter/confirm/{token[:80]}?lang={language.other}",
        message_key="counter.citizen.refused",
    )
