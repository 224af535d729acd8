"""Identify step (level low): national code and birth date against the civil registry.

Every login posts this form, so it is split for throughput: the checks and the
registry question run on a read-only transaction (:func:`_read`, which also
decides what a login would write, :class:`_Plan`); everything the step changes
(the attempt counted, the session, the audit entry and, when nothing else is
left to ask, the closed interaction with its code) is one write through the
group committer (:func:`_write`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.audit.log import append_many, subject_hash
from idp.login import sessions
from idp.login.flow import finished, next_step, reset_choices
from idp.login.forms import Entered, identify_form
from idp.login.i18n import translate
from idp.login.limits import Allowance, exhausted, take
from idp.login.render import hoviyat_of
from idp.login.steps.mobile import minutes_for
from idp.login.steps.posted import (
    HOUR,
    Posted,
    Redirect,
    SessionCookie,
    StepEvent,
    open_posted,
    record,
    registry_down,
    respond,
)
from idp.oidc import completion
from idp.oidc.authorize import AuthorizationRequest
from idp.storage.login import LoginSession
from policies import assurance
from verifiers.dates import parse_date
from verifiers.identifiers import IdentifierError, validate_national_code
from verifiers.matching import PersonClaims, compare_person, overall_match
from verifiers.registry.base import RegistryUnavailable

FIELDS = ("interaction", "lang", "csrf_token", "national_code", "birth_date")


@dataclass(frozen=True)
class _Identified:
    """What the write decided: a refusal (field, message key, status) or a login."""

    status: int
    field: str = ""
    error: str = ""
    wait: int = 0
    token: str = ""
    location: str = ""
    outcome: str = ""


@dataclass(frozen=True)
class _Plan:
    """A login about to be written: its session, and the code to issue if nothing is left to ask."""

    session: LoginSession
    token: str
    authz: AuthorizationRequest | None


@dataclass(frozen=True)
class _Read:
    """What the read phase decided, for the write."""

    posted: Posted
    code: str
    values: dict[str, str]
    limits: list[Allowance]
    refusal: _Identified | None
    plan: _Plan | None


async def identify(request: Request, fields: dict[str, str]) -> Response:
    hoviyat = hoviyat_of(request)
    # On the event loop when the registry answers in-process: the reads take
    # less time than the hop to a worker thread and back.
    if hoviyat.registries.blocking:
        read = await run_in_threadpool(_read, request, fields)
    else:
        read = _read(request, fields)
    if isinstance(read, Response):
        return read

    def write(db_session: Session) -> _Identified:
        return _write(db_session, read)

    decided = await hoviyat.committer.run(write)
    posted = read.posted
    if decided.wait:
        return _too_many_logins(posted, read.values, decided.wait)
    if decided.field:
        errors = {decided.field: translate(decided.error, posted.language)}
        return identify_form(
            request, posted.flow, posted.language, Entered(decided.status, errors, read.values)
        )
    cookie = SessionCookie(decided.token, hoviyat.login_settings.session_ttl_seconds)
    return respond(posted, Redirect(decided.location, cookie=cookie))


def _too_many_logins(posted: Posted, values: dict[str, str], wait: int) -> HTMLResponse:
    minutes = minutes_for(wait, posted.language)
    errors = {"national_code": translate("err.too_many_logins", posted.language, minutes=minutes)}
    return identify_form(posted.request, posted.flow, posted.language, Entered(429, errors, values))


def _identifier_error(posted: Posted, exc: IdentifierError) -> str:
    try:
        return translate(f"err.national_code.{exc.rule}", posted.language)
    except KeyError:
        return translate("err.national_code.digits", posted.language)


def _read(request: Request, fields: dict[str, str]) -> _Read | Response:
    """The step up to its write: CSRF, the input, the attempt limit, the registry."""
    hoviyat = hoviyat_of(request)
    settings = hoviyat.login_settings
    national_code, birth_date = fields["national_code"], fields["birth_date"]
    values = {"national_code": national_code[:20], "birth_date": birth_date[:20]}
    with hoviyat.db.read() as db_session:
        posted = open_posted(
            request, db_session, fields["interaction"], fields["lang"], fields["csrf_token"]
        )
        if isinstance(posted, HTMLResponse):
            return posted
        flow, language = posted.flow, posted.language
        errors: dict[str, str] = {}
        code = ""
        born: date | None = None
        if not national_code.strip():
            errors["national_code"] = translate("err.required", language)
        else:
            try:
                code = validate_national_code(national_code)
            except IdentifierError as exc:
                errors["national_code"] = _identifier_error(posted, exc)
        if not birth_date.strip():
            errors["birth_date"] = translate("err.required", language)
        else:
            try:
                born = parse_date(birth_date)
            except IdentifierError:
                errors["birth_date"] = translate("err.birth_date", language)
        if errors or born is None:
            return identify_form(request, flow, language, Entered(400, errors, values))
        bucket = f"login:nc:{subject_hash(hoviyat.secrets.subject_pepper, code)}"
        limits = [Allowance(bucket, settings.login_attempts_per_national_code_per_hour)]
        # Refused early without asking the registry; the write decides for sure.
        early = exhausted(db_session, limits, HOUR)
        if early is not None:
            return _too_many_logins(posted, values, early)
        try:
            person = hoviyat.registries.civil.person(code)
        except RegistryUnavailable as exc:
            return registry_down(request, language, exc)
        matched = person is not None and overall_match(
            compare_person(person, PersonClaims(birth_date=born))
        )
        alive = person is not None and person.alive
        plan = _plan(db_session, posted, code) if matched and alive else None
        refusal = None
        if not matched:
            # One message for "unknown" and "wrong birth date" (design notes, API conventions).
            refusal = _Identified(400, "birth_date", "err.no_match", outcome="no_match")
        elif not alive:
            refusal = _Identified(403, "national_code", "err.deceased", outcome="refused_deceased")
    return _Read(posted, code, values, limits, refusal, plan)


def _plan(db_session: Session, posted: Posted, code: str) -> _Plan:
    """Decide on a read-only transaction what the step will write."""
    flow = posted.flow
    session, token = sessions.new_session(
        national_code=code,
        acr=assurance.LOW,
        amr=[assurance.AMR_KNOWLEDGE],
        tracking_code=flow.interaction.tracking_code,
        ttl_seconds=posted.hoviyat.login_settings.session_ttl_seconds,
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


def _write(db_session: Session, read: _Read) -> _Identified:
    """The step's write: count the attempt; record the refusal, or log in."""
    posted, code, plan = read.posted, read.code, read.plan
    hoviyat, flow = posted.hoviyat, posted.flow
    # The read-only check ran just before; only a race with another worker remains.
    wait = take(db_session, read.limits, HOUR, checked=True)
    if wait is not None:
        return _Identified(429, wait=wait)
    if read.refusal is not None or plan is None:
        refusal = read.refusal or _Identified(403, "national_code", "err.deceased")
        record(db_session, posted, [StepEvent("identify", refusal.outcome, code)])
        return refusal
    previous = sessions.session_row(posted.request, db_session)
    if previous is not None:
        sessions.end_session(db_session, previous.id)
    session = plan.session
    sessions.store_session(db_session, session)
    # The step's audit entries go in as one insert, after what they record.
    logged_in = StepEvent(
        "identify", "success", code, {"acr": assurance.LOW, "session_id": session.id}
    )
    events = [logged_in.audit(hoviyat, flow)]
    location = posted.login_url
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
            login=login,
            requested_at=flow.interaction.created_at,
            tracking_code=flow.interaction.tracking_code,
            audit=events,
        )
    else:
        # More to ask, or closed by another request meanwhile (the login page says which).
        reset_choices(db_session, flow.interaction.id)
    append_many(db_session, events)
    return _Identified(303, token=plan.token, location=location)
