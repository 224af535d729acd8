"""The login pages' routes: ``GET /login`` shows the next step, each form POSTs one step.

Each step is a module of :mod:`idp.login.steps`; :mod:`idp.login.steps.posted`
does what every POST shares (CSRF first, a login still in progress, the
session, the language) and answers the step's outcome, 303 back to ``/login``
(PRG) or the form again. Wrong input re-renders the same form with the error
next to its field (400); a refusal the citizen must understand (deceased,
entity dissolved...) says why in their language (403). Registry outages
answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from idp.login.account import router as account_router
from idp.login.flow import Flow, load_flow
from idp.login.forms import close_login, show_step
from idp.login.i18n import Language, pick_language
from idp.login.passkey_account import router as passkey_account_router
from idp.login.render import STATIC, hoviyat_of, message
from idp.login.steps import (
    cancel,
    certificate,
    consent,
    entity,
    identify,
    mobile,
    otp,
    passkey,
)
from idp.login.steps.posted import Step, registry_down, run_step
from idp.storage.login import AuthenticatedPerson
from verifiers.registry.base import RegistryUnavailable

router = APIRouter(tags=["login"], include_in_schema=False)
router.include_router(account_router)
router.include_router(passkey_account_router)

FormStr = Annotated[str, Form()]


@router.get("/login/static/login.css")
def stylesheet() -> FileResponse:
    return FileResponse(STATIC / "login.css", media_type="text/css")


@router.get("/login/static/passkeys.js")
def passkey_script() -> FileResponse:
    return FileResponse(STATIC / "passkeys.js", media_type="text/javascript")


@router.get("/login")
async def login_page(request: Request, interaction: str = "", lang: str | None = None) -> Response:
    """The step a login is at; a browser already logged in often has none left (SSO).

    On the event loop when the registries answer in-process (see the identify
    step), and the closing write is awaited through the group committer.
    """
    hoviyat = hoviyat_of(request)
    if hoviyat.registries.blocking:
        shown = await run_in_threadpool(_login_step, request, interaction, lang)
    else:
        shown = _login_step(request, interaction, lang)
    if isinstance(shown, Response):
        return shown
    return await close_login(request, *shown)


async def login_page_direct(request: Request) -> Response:
    query = request.query_params
    return await login_page(request, query.get("interaction", ""), query.get("lang"))


def _login_step(
    request: Request, interaction: str, lang: str | None
) -> Response | tuple[Flow, Language, AuthenticatedPerson]:
    hoviyat = hoviyat_of(request)
    try:
        with hoviyat.db.read() as db_session:
            flow = load_flow(db_session, interaction, hoviyat.policies)
            language = pick_language(lang, flow.ui_locales if flow else None)
            if flow is None:
                return message(request, language, "err.interaction", 400)
            shown = show_step(request, db_session, flow, language)
    except RegistryUnavailable as exc:
        return registry_down(request, pick_language(lang, None), exc)
    if isinstance(shown, AuthenticatedPerson):
        return flow, language, shown
    return shown


@router.post("/login/identify")
async def identify_route(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    national_code: FormStr = "",
    birth_date: FormStr = "",
) -> Response:
    """Level low. Every login posts this form, so it is answered by
    :func:`identify_direct` (the same code without FastAPI's router)."""
    fields = {
        "interaction": interaction,
        "lang": lang,
        "csrf_token": csrf_token,
        "national_code": national_code,
        "birth_date": birth_date,
    }
    return await identify.identify(request, fields)


async def identify_direct(request: Request) -> Response:
    return await identify.identify(request, await _form_fields(request, identify.FIELDS))


async def _form_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields of a posted form, "" when absent (as the FastAPI route's defaults)."""
    async with request.form() as form:
        fields = {}
        for name in names:
            value = form.get(name, "")
            # A file sent in a text field's place counts as nothing typed.
            fields[name] = value if isinstance(value, str) else ""
    return fields


@dataclass(frozen=True, slots=True)
class StepForm:
    """The fields every step's form carries (see ``_forms.html``)."""

    interaction: str
    lang: str
    csrf_token: str


def _step_form(interaction: FormStr = "", lang: FormStr = "", csrf_token: FormStr = "") -> StepForm:
    return StepForm(interaction, lang, csrf_token)


StepFormDep = Annotated[StepForm, Depends(_step_form)]


def _run(request: Request, form: StepForm, step: Step) -> Response:
    return run_step(request, form.interaction, form.lang, form.csrf_token, step)


@router.post("/login/mobile")
def send_code(
    request: Request, form: StepFormDep, typed: Annotated[str, Form(alias="mobile")] = ""
) -> Response:
    return mobile.send_code(request, form.interaction, form.lang, form.csrf_token, typed)


@router.post("/login/otp")
def check_code(
    request: Request, form: StepFormDep, typed: Annotated[str, Form(alias="otp")] = ""
) -> Response:
    return _run(request, form, partial(otp.check, typed=typed))


@router.post("/login/entity")
def choose_entity(
    request: Request, form: StepFormDep, entity_national_id: FormStr = ""
) -> Response:
    return _run(request, form, partial(entity.choose, typed=entity_national_id))


@router.post("/login/consent")
def decide_consent(request: Request, form: StepFormDep, decision: FormStr = "") -> Response:
    return _run(request, form, partial(consent.decide, decision=decision))


@router.post("/login/certificate")
async def certificate_login(request: Request, form: StepFormDep) -> Response:
    """Level high with the TLS client certificate the proxy forwarded (steps/certificate.py)."""
    return await certificate.sign_in(request, form.interaction, form.lang, form.csrf_token)


@router.post("/login/passkeys/register/options")
async def passkey_registration_options(request: Request) -> Response:
    """WebAuthn creation options for a session at substantial (steps/passkey.py)."""
    fields = await _form_fields(request, passkey.FIELDS)
    return await run_in_threadpool(passkey.registration_options_json, request, fields)


@router.post("/login/passkeys/register")
async def passkey_register(request: Request) -> Response:
    fields = await _form_fields(request, passkey.FIELDS)
    return await run_in_threadpool(passkey.register, request, fields)


@router.post("/login/passkeys/authenticate/options")
async def passkey_authentication_options(request: Request) -> Response:
    fields = await _form_fields(request, passkey.FIELDS)
    return await run_in_threadpool(passkey.authentication_options_json, request, fields)


@router.post("/login/passkeys/authenticate")
async def passkey_authenticate(request: Request) -> Response:
    """Level high with a registered passkey: amr hwk + user (RFC 8176)."""
    fields = await _form_fields(request, passkey.FIELDS)
    return await run_in_threadpool(passkey.authenticate, request, fields)


@router.post("/login/cancel")
def cancel_login(request: Request, form: StepFormDep) -> Response:
    return _run(request, form, cancel.cancel)
