"""The login pages: ``GET /login`` shows the next step, each form POSTs one step and redirects back.

Every POST checks the CSRF token first and changes nothing when it fails.
Wrong input re-renders the same form with the error next to its field (400);
a refusal the citizen must understand (deceased, entity dissolved...) says why
in their language (403). Registry outages answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.audit.log import append, append_many, subject_hash
from idp.http.direct import direct_route
from idp.login import entities, keys, otp, sessions
from idp.login.account import router as account_router
from idp.login.config import get_login_settings
from idp.login.consent import remember_consent
from idp.login.flow import (
    Flow,
    finished,
    load_flow,
    next_step,
    refuse,
    reset_choices,
    step_event,
)
from idp.login.i18n import Language, digits_for, pick_language, translate
from idp.login.limits import Allowance, exhausted, take
from idp.login.render import STATIC, csrf_ok, hoviyat_of, message, page_url, see_other
from idp.login.sms import OutboxForbidden, SmsSender, SmsUnavailable, build_sender
from idp.login.steps import (
    client_name,
    close_login,
    entity_form,
    identify_form,
    mobile_form,
    otp_form,
    show_step,
)
from idp.oidc import completion
from idp.oidc.authorize import AuthorizationRequest
from idp.oidc.completion import FinishedLogin
from idp.oidc.grants import LoginFacts
from idp.storage.login import LoginOtp, LoginSession
from policies import assurance
from verifiers.dates import parse_date
from verifiers.identifiers import IdentifierError, validate_national_code, validate_national_id
from verifiers.matching import PersonClaims, compare_person, overall_match
from verifiers.mobile import normalize_mobile
from verifiers.registry.base import RegistryUnavailable

log = logging.getLogger("hoviyat.login")

router = APIRouter(tags=["login"], include_in_schema=False)
router.include_router(account_router)

FormStr = Annotated[str, Form()]
HOUR = 3600

Page = HTMLResponse | RedirectResponse


# --- helpers -----------------------------------------------------------------------------------


def _language(lang: str | None, flow: Flow | None) -> Language:
    return pick_language(lang, flow.ui_locales if flow else None)


def _bad_interaction(request: Request, language: Language) -> HTMLResponse:
    return message(request, language, "err.interaction", 400)


def _forged(request: Request, language: Language) -> HTMLResponse:
    return message(request, language, "err.csrf", 403)


def _registry_down(request: Request, language: Language, exc: RegistryUnavailable) -> HTMLResponse:
    names = {"civil": ("ثبت احوال", "civil"), "mobile": ("مالکیت خطوط", "mobile ownership")}
    fa, en = names.get(exc.registry, ("ثبت اسناد", "deeds"))
    return message(
        request,
        language,
        "err.registry",
        503,
        headers={"Retry-After": str(exc.retry_after)},
        registry=fa if language.code == "fa" else en,
    )


def _posted(
    request: Request, db_session: Session, interaction: str, lang: str, csrf_token: str
) -> tuple[Flow, Language] | HTMLResponse:
    """Every login form's first checks: the CSRF token, then a login still in progress."""
    flow = load_flow(db_session, interaction, hoviyat_of(request).policies)
    language = _language(lang, flow)
    if not csrf_ok(request, csrf_token):
        return _forged(request, language)
    if flow is None:
        return _bad_interaction(request, language)
    return flow, language


def _login_url(flow: Flow, language: Language) -> str:
    return page_url("/login", language, flow.interaction.id)


def _sender(request: Request) -> SmsSender:
    sender: SmsSender | None = getattr(request.app.state, "login_sms_sender", None)
    if sender is None:
        hoviyat = hoviyat_of(request)
        sender = build_sender(hoviyat.settings, get_login_settings(), hoviyat.db)
        request.app.state.login_sms_sender = sender
    return sender


def _otp_key(request: Request) -> bytes:
    return keys.derived_key(hoviyat_of(request).secrets, keys.OTP)


def _error_text(language: Language, key: str, **values: object) -> str:
    return translate(key, language, **values)


def _identifier_error(language: Language, exc: IdentifierError) -> str:
    key = f"err.national_code.{exc.rule}"
    try:
        return translate(key, language)
    except KeyError:
        return translate("err.national_code.digits", language)


# --- routes ------------------------------------------------------------------------------------


@router.get("/login/static/login.css")
def stylesheet() -> FileResponse:
    return FileResponse(STATIC / "login.css", media_type="text/css")


@router.get("/login")
async def login_page(request: Request, interaction: str = "", lang: str | None = None) -> Response:
    """The step a login is at; a browser already logged in often has none left (SSO).

    On the event loop when the registries answer in-process (see _identify),
    and the closing write is awaited through the group committer.
    """
    hoviyat = hoviyat_of(request)
    if hoviyat.registries.blocking:
        shown = await run_in_threadpool(_login_step, request, interaction, lang)
    else:
        shown = _login_step(request, interaction, lang)
    if isinstance(shown, Response):
        return shown
    return await close_login(request, *shown)


@direct_route("GET", "/login")
async def login_page_direct(request: Request) -> Response:
    query = request.query_params
    return await login_page(request, query.get("interaction", ""), query.get("lang"))


def _login_step(
    request: Request, interaction: str, lang: str | None
) -> Response | tuple[Flow, Language, FinishedLogin]:
    hoviyat = hoviyat_of(request)
    try:
        with hoviyat.db.read() as db_session:
            flow = load_flow(db_session, interaction, hoviyat.policies)
            language = _language(lang, flow)
            if flow is None:
                return _bad_interaction(request, language)
            shown = show_step(request, db_session, flow, language)
    except RegistryUnavailable as exc:
        return _registry_down(request, pick_language(lang, None), exc)
    if isinstance(shown, FinishedLogin):
        return flow, language, shown
    return shown


@dataclass(frozen=True)
class _Identified:
    """What the identify step's write decided: a refusal (field, message key, status) or a login."""

    status: int
    field: str = ""
    error: str = ""
    wait: int = 0
    token: str = ""
    location: str = ""
    outcome: str = ""


_IDENTIFY_FIELDS = ("interaction", "lang", "csrf_token", "national_code", "birth_date")


@router.post("/login/identify")
async def identify(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    national_code: FormStr = "",
    birth_date: FormStr = "",
) -> Response:
    """Level low: national code and birth date against the civil registry.

    The checks and the registry question need no write lock; everything the
    step changes (the attempt counted, the session, the audit entry and, when
    nothing else is left to ask, the closed interaction with its code) is one
    write through the group committer. Every login posts this form, so it is
    answered by :func:`identify_direct` (the same code without FastAPI's router).
    """
    fields = {
        "interaction": interaction,
        "lang": lang,
        "csrf_token": csrf_token,
        "national_code": national_code,
        "birth_date": birth_date,
    }
    return await _identify(request, fields)


@direct_route("POST", "/login/identify")
async def identify_direct(request: Request) -> Response:
    return await _identify(request, await _form_fields(request, _IDENTIFY_FIELDS))


async def _form_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields of a posted form, "" when absent (as the FastAPI route's defaults)."""
    async with request.form() as form:
        fields = {}
        for name in names:
            value = form.get(name, "")
            # A file sent in a text field's place counts as nothing typed.
            fields[name] = value if isinstance(value, str) else ""
    return fields


@dataclass(frozen=True)
class _IdentifyRead:
    """What the identify step's read phase decided, for its write."""

    flow: Flow
    language: Language
    code: str
    values: dict[str, str]
    limits: list[Allowance]
    refusal: _Identified | None
    plan: _Plan | None


async def _identify(request: Request, fields: dict[str, str]) -> Response:
    hoviyat = hoviyat_of(request)
    # On the event loop when the registry answers in-process: the reads take
    # less time than the hop to a worker thread and back.
    if hoviyat.registries.blocking:
        read = await run_in_threadpool(_identify_read, request, fields)
    else:
        read = _identify_read(request, fields)
    if isinstance(read, Response):
        return read
    flow, language, values = read.flow, read.language, read.values

    def write(db_session: Session) -> _Identified:
        return _identified(
            request, db_session, flow, language, read.code, read.limits, read.refusal, read.plan
        )

    outcome = await hoviyat.committer.run(write)
    errors: dict[str, str] = {}
    if outcome.wait:
        return _too_many_logins(request, flow, language, values, outcome.wait)
    if outcome.field:
        errors[outcome.field] = _error_text(language, outcome.error)
        return identify_form(
            request, flow, language, status_code=outcome.status, errors=errors, values=values
        )
    response = see_other(outcome.location)
    sessions.set_session_cookie(
        response,
        hoviyat.settings,
        outcome.token,
        max_age=get_login_settings().session_ttl_seconds,
    )
    return response


def _too_many_logins(
    request: Request, flow: Flow, language: Language, values: dict[str, str], wait: int
) -> HTMLResponse:
    minutes = digits_for(str(max(1, wait // 60)), language)
    errors = {"national_code": _error_text(language, "err.too_many_logins", minutes=minutes)}
    return identify_form(request, flow, language, status_code=429, errors=errors, values=values)


def _identify_read(request: Request, fields: dict[str, str]) -> _IdentifyRead | Response:
    """The identify step up to its write: CSRF, the input, the attempt limit, the registry."""
    hoviyat = hoviyat_of(request)
    settings = get_login_settings()
    national_code, birth_date = fields["national_code"], fields["birth_date"]
    values = {"national_code": national_code[:20], "birth_date": birth_date[:20]}
    with hoviyat.db.read() as db_session:
        posted = _posted(
            request, db_session, fields["interaction"], fields["lang"], fields["csrf_token"]
        )
        if isinstance(posted, HTMLResponse):
            return posted
        flow, language = posted
        errors: dict[str, str] = {}
        code = ""
        born: date | None = None
        if not national_code.strip():
            errors["national_code"] = _error_text(language, "err.required")
        else:
            try:
                code = validate_national_code(national_code)
            except IdentifierError as exc:
                errors["national_code"] = _identifier_error(language, exc)
        if not birth_date.strip():
            errors["birth_date"] = _error_text(language, "err.required")
        else:
            try:
                born = parse_date(birth_date)
            except IdentifierError:
                errors["birth_date"] = _error_text(language, "err.birth_date")
        if errors or born is None:
            return identify_form(
                request, flow, language, status_code=400, errors=errors, values=values
            )
        bucket = f"login:nc:{subject_hash(hoviyat.secrets.subject_pepper, code)}"
        limits = [Allowance(bucket, settings.login_attempts_per_national_code_per_hour)]
        # Refused early without asking the registry; the write decides for sure.
        early = exhausted(db_session, limits, HOUR)
        if early is not None:
            return _too_many_logins(request, flow, language, values, early)
        try:
            person = hoviyat.registries.civil.person(code)
        except RegistryUnavailable as exc:
            return _registry_down(request, language, exc)
        matched = person is not None and overall_match(
            compare_person(person, PersonClaims(birth_date=born))
        )
        alive = person is not None and person.alive
        plan = _plan(request, db_session, flow, code) if matched and alive else None
        refusal = None
        if not matched:
            # One message for "unknown" and "wrong birth date" (design notes, API conventions).
            refusal = _Identified(400, "birth_date", "err.no_match", outcome="no_match")
        elif not alive:
            refusal = _Identified(403, "national_code", "err.deceased", outcome="refused_deceased")
    return _IdentifyRead(flow, language, code, values, limits, refusal, plan)


@dataclass(frozen=True)
class _Plan:
    """A login about to be written: its session, and the code to issue if nothing is left to ask."""

    session: LoginSession
    token: str
    authz: AuthorizationRequest | None


def _plan(request: Request, db_session: Session, flow: Flow, code: str) -> _Plan:
    """Decide on a read-only transaction what the identify step will write."""
    session, token = sessions.new_session(
        national_code=code,
        acr=assurance.LOW,
        amr=[assurance.AMR_KNOWLEDGE],
        tracking_code=flow.interaction.tracking_code,
        ttl_seconds=get_login_settings().session_ttl_seconds,
    )
    # A different person may have logged in: choices made for the earlier one do not carry.
    flow.interaction.entity_national_id = None
    flow.interaction.consent_granted = False
    authz = None
    if next_step(db_session, flow, session, otp_pending=False) == "complete":
        try:
            authz = AuthorizationRequest.from_params(flow.params, flow.client.client_id)
        except ValueError:
            authz = None  # /login shows why
    return _Plan(session, token, authz)


def _identified(
    request: Request,
    db_session: Session,
    flow: Flow,
    language: Language,
    code: str,
    limits: list[Allowance],
    refusal: _Identified | None,
    plan: _Plan | None,
) -> _Identified:
    """The identify step's write: count the attempt; record the refusal, or log in."""
    hoviyat = hoviyat_of(request)
    # The read-only check ran just before; only a race with another worker remains.
    wait = take(db_session, limits, HOUR, checked=True)
    if wait is not None:
        return _Identified(429, wait=wait)
    if refusal is not None or plan is None:
        refusal = refusal or _Identified(403, "national_code", "err.deceased")
        append(db_session, step_event(hoviyat, flow, "login", "identify", refusal.outcome, code))
        return refusal
    previous = sessions.session_row(request, db_session)
    if previous is not None:
        sessions.end_session(db_session, previous.id)
    session = plan.session
    sessions.store_session(db_session, session)
    # The step's audit entries go in as one insert, after what they record.
    events = [
        step_event(
            hoviyat,
            flow,
            "login",
            "identify",
            "success",
            code,
            acr=assurance.LOW,
            session_id=session.id,
        )
    ]
    location = _login_url(flow, language)
    login = finished(flow, session)
    if plan.authz is not None and completion.close_and_consume(
        db_session, flow.interaction.id, login
    ):
        # No savepoint is needed around closing and issuing: issue() raises only
        # for a client that is gone or disabled, and flow.client was read
        # enabled by this request (a raise would roll the whole write back).
        location = completion.issue(
            db_session,
            hoviyat,
            plan.authz,
            client=flow.client,
            consent_granted=True,
            login=LoginFacts(
                session_id=session.id,
                national_code=session.national_code,
                acr=session.acr,
                amr=list(session.amr),
                auth_time=session.auth_time,
                entity_national_id=None,
                mobile=None,
            ),
            requested_at=flow.interaction.created_at,
            tracking_code=flow.interaction.tracking_code,
            audit=events,
        )
    else:
        # More to ask, or closed by another request meanwhile (the login page says which).
        reset_choices(db_session, flow.interaction.id)
    append_many(db_session, events)
    return _Identified(303, token=plan.token, location=location)


@router.post("/login/mobile")
def send_code(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    mobile: FormStr = "",
) -> Response:
    hoviyat = hoviyat_of(request)
    settings = get_login_settings()
    values = {"mobile": mobile[:20]}
    outgoing: tuple[str, str, str] | None = None
    with hoviyat.db.session() as db_session:
        posted = _posted(request, db_session, interaction, lang, csrf_token)
        if isinstance(posted, HTMLResponse):
            return posted
        flow, language = posted
        session = sessions.session_row(request, db_session)
        if session is None:
            return see_other(_login_url(flow, language))
        try:
            number = normalize_mobile(mobile)
        except IdentifierError:
            errors = {"mobile": _error_text(language, "err.mobile")}
            return mobile_form(
                request, flow, language, status_code=400, errors=errors, values=values
            )
        nc_hash = subject_hash(hoviyat.secrets.subject_pepper, session.national_code)
        limits = [
            Allowance(f"otp:mobile:{number}", settings.otp_per_mobile_per_hour),
            Allowance(f"otp:nc:{nc_hash}", settings.otp_per_national_code_per_hour),
        ]
        # Counted before the registry answers, so guessing which number a person owns is slow too.
        wait = take(db_session, limits, HOUR)
        if wait is not None:
            minutes = digits_for(str(max(1, wait // 60)), language)
            errors = {"mobile": _error_text(language, "err.too_many_codes", minutes=minutes)}
            return mobile_form(
                request, flow, language, status_code=429, errors=errors, values=values
            )
        try:
            owned = hoviyat.registries.mobile.owns(session.national_code, number)
        except RegistryUnavailable as exc:
            return _registry_down(request, language, exc)
        if not owned:
            event = step_event(hoviyat, flow, "login", "mobile", "not_owner", session.national_code)
            append(db_session, event)
            errors = {"mobile": _error_text(language, "err.mobile_not_owned")}
            return mobile_form(
                request, flow, language, status_code=400, errors=errors, values=values
            )
        row, code = otp.issue_code(
            db_session,
            key=_otp_key(request),
            session_id=session.id,
            interaction_id=flow.interaction.id,
            national_code=session.national_code,
            mobile=number,
            ttl_seconds=settings.otp_ttl_seconds,
            max_attempts=settings.otp_max_attempts,
        )
        text = _sms_text(language, code, client_name(flow))
        outgoing = (row.id, number, text)
        redirect = _login_url(flow, language)
    # Sent after the code is committed: a text never names a code the database lacks.
    try:
        _sender(request).send(outgoing[1], outgoing[2])
    except (SmsUnavailable, OutboxForbidden) as exc:
        log.error("one-time code not sent: %s", exc)
        with hoviyat.db.session() as db_session:
            otp.withdraw_code(db_session, outgoing[0])
        return message(request, language, "err.sms_unavailable", 503, headers={"Retry-After": "60"})
    return see_other(redirect)


def _sms_text(language: Language, code: str, client: str) -> str:
    if language.code == "fa":
        return f"کد ورود هویت: {code}\nبرای ورود به «{client}». این کد را به هیچ‌کس ندهید."
    return f"Hoviyat login code: {code}\nTo log in to “{client}”. Never share this code."


@router.post("/login/otp")
def check_code(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    otp_code: Annotated[str, Form(alias="otp")] = "",
) -> Response:
    hoviyat = hoviyat_of(request)
    settings = get_login_settings()
    with hoviyat.db.session() as db_session:
        posted = _posted(request, db_session, interaction, lang, csrf_token)
        if isinstance(posted, HTMLResponse):
            return posted
        flow, language = posted
        session = sessions.session_row(request, db_session)
        pending = otp.pending_code(db_session, session.id, flow.interaction.id) if session else None
        if session is None or pending is None:
            return see_other(_login_url(flow, language))
        code = "".join(ch for ch in otp.normalize(otp_code))
        if len(code) != 6 or not code.isdigit():
            errors = {"otp": _error_text(language, "err.otp_format")}
            return otp_form(request, flow, language, pending.mobile, status_code=400, errors=errors)
        outcome = otp.check_code(db_session, key=_otp_key(request), otp_id=pending.id, code=code)
        if outcome is not otp.OtpOutcome.ACCEPTED:
            append(
                db_session,
                step_event(
                    hoviyat,
                    flow,
                    "login",
                    "otp",
                    f"otp_{outcome.value}",
                    session.national_code,
                ),
            )
            if outcome is otp.OtpOutcome.USED:
                return _otp_already_used(request, db_session, flow, language, session, pending)
            fresh = db_session.get(LoginOtp, pending.id, populate_existing=True)
            left = otp.attempts_left(fresh) if fresh is not None else 0
            key = {
                otp.OtpOutcome.WRONG: "err.otp_wrong",
                otp.OtpOutcome.EXPIRED: "err.otp_expired",
            }.get(outcome, "err.otp_exhausted")
            if outcome is otp.OtpOutcome.WRONG and left == 0:
                key = "err.otp_exhausted"
            errors = {"otp": _error_text(language, key, left=digits_for(str(left), language))}
            return otp_form(request, flow, language, pending.mobile, status_code=400, errors=errors)
        token = sessions.raise_level(
            db_session,
            session,
            acr=assurance.SUBSTANTIAL,
            amr=[assurance.AMR_SMS, assurance.AMR_OTP],
            mobile=pending.mobile,
        )
        append(
            db_session,
            step_event(
                hoviyat,
                flow,
                "login",
                "otp",
                "success",
                session.national_code,
                acr=assurance.SUBSTANTIAL,
                session_id=session.id,
            ),
        )
        response = see_other(_login_url(flow, language))
        remaining = int((_aware(session.expires_at) - datetime.now(UTC)).total_seconds())
        sessions.set_session_cookie(
            response,
            hoviyat.settings,
            token,
            max_age=max(1, min(remaining, settings.session_ttl_seconds)),
        )
        return response


def _otp_already_used(
    request: Request,
    db_session: Session,
    flow: Flow,
    language: Language,
    session: LoginSession,
    pending: LoginOtp,
) -> Response:
    """The code was accepted (or replaced) by another submission, typically the
    same browser's double click or a second tab: say so, never "wrong too many
    times". The session row, read after the code's conditional UPDATE waited
    for that other submission to commit, tells whether the step is done."""
    latest = db_session.get(LoginSession, session.id, populate_existing=True)
    done = (
        latest is not None
        and latest.ended_at is None
        and assurance.satisfies(latest.acr, assurance.SUBSTANTIAL)
        and latest.mobile == pending.mobile
    )
    if done:
        return message(
            request,
            language,
            "otp.already_accepted",
            409,
            continue_url=_login_url(flow, language),
        )
    errors = {"otp": _error_text(language, "err.otp_used")}
    return otp_form(request, flow, language, pending.mobile, status_code=409, errors=errors)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.post("/login/entity")
def choose_entity(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    entity_national_id: FormStr = "",
) -> Response:
    hoviyat = hoviyat_of(request)
    values = {"entity_national_id": entity_national_id[:20]}
    try:
        with hoviyat.db.session() as db_session:
            posted = _posted(request, db_session, interaction, lang, csrf_token)
            if isinstance(posted, HTMLResponse):
                return posted
            flow, language = posted
            session = sessions.session_row(request, db_session)
            if session is None or not flow.wants_entity:
                return see_other(_login_url(flow, language))
            try:
                national_id = validate_national_id(entity_national_id)
            except IdentifierError:
                errors = {"entity_national_id": _error_text(language, "err.entity_id")}
                return entity_form(
                    request, flow, language, session, status_code=400, errors=errors, values=values
                )
            found = entities.assess(
                national_id,
                hoviyat.registries.deeds.entity(national_id),
                session.national_code,
                date.today(),
            )
            if found.refusal is not None:
                append(
                    db_session,
                    step_event(
                        hoviyat,
                        flow,
                        "login",
                        "entity",
                        "refused",
                        session.national_code,
                        reason=found.refusal,
                        entity_hash=subject_hash(hoviyat.secrets.subject_pepper, national_id),
                    ),
                )
                shown = {k: digits_for(v, language) for k, v in found.refusal_values.items()}
                errors = {"entity_national_id": _error_text(language, found.refusal, **shown)}
                return entity_form(
                    request, flow, language, session, status_code=403, errors=errors, values=values
                )
            flow.interaction.entity_national_id = national_id
            db_session.add(flow.interaction)
            sessions.choose_entity(db_session, session.id, national_id)
            append(
                db_session,
                step_event(
                    hoviyat,
                    flow,
                    "login",
                    "entity",
                    "success",
                    session.national_code,
                    entity_hash=subject_hash(hoviyat.secrets.subject_pepper, national_id),
                ),
            )
            return see_other(_login_url(flow, language))
    except RegistryUnavailable as exc:
        return _registry_down(request, pick_language(lang, None), exc)


@router.post("/login/consent")
def decide_consent(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
    decision: FormStr = "",
) -> Response:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db_session:
        posted = _posted(request, db_session, interaction, lang, csrf_token)
        if isinstance(posted, HTMLResponse):
            return posted
        flow, language = posted
        session = sessions.session_row(request, db_session)
        if session is None or decision not in ("allow", "deny"):
            return see_other(_login_url(flow, language))
        if decision == "deny":
            append(
                db_session,
                step_event(
                    hoviyat,
                    flow,
                    "consent",
                    "consent",
                    "denied",
                    session.national_code,
                    claims=flow.claims,
                ),
            )
            return see_other(refuse(db_session, flow))
        remember_consent(db_session, session.national_code, flow.client.client_id, flow.claims)
        flow.interaction.consent_granted = True
        db_session.add(flow.interaction)
        append(
            db_session,
            step_event(
                hoviyat,
                flow,
                "consent",
                "consent",
                "granted",
                session.national_code,
                claims=flow.claims,
            ),
        )
        return see_other(_login_url(flow, language))


@router.post("/login/cancel")
def cancel(
    request: Request,
    interaction: FormStr = "",
    lang: FormStr = "",
    csrf_token: FormStr = "",
) -> Response:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db_session:
        posted = _posted(request, db_session, interaction, lang, csrf_token)
        if isinstance(posted, HTMLResponse):
            return posted
        flow, _ = posted
        session = sessions.session_row(request, db_session)
        append(
            db_session,
            step_event(
                hoviyat,
                flow,
                "login",
                "cancel",
                "cancelled",
                session.national_code if session else None,
            ),
        )
        return see_other(refuse(db_session, flow))
