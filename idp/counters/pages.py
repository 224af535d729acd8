"""The service counter's console pages, under ``/console/counter``.

- ``GET  /counter``: the clerk's offices and the form that starts a session
  (the supervisor's queues are linked from here too).
- ``POST /counter/sessions``: start; the presence code is texted after the
  session has committed.
- ``GET  /counter/sessions/{id}``; ``POST .../presence``, ``.../resend``,
  ``.../act`` (the service named in the form), ``.../end``.
- ``POST /counter/sessions/{id}/link``: a QR code (and the URL as text) for the
  citizen to confirm presence with their own passkey on their own phone
  (:mod:`idp.counters.remote_presence`); this page runs no script and no ceremony.
- ``GET  /counter/offices/{office}/review``; ``POST /counter/offices/{office}/flag``.

Each handler checks the console role first (:func:`require_role`, refusals
audited by the console), then CSRF, then hands the act to
:mod:`idp.counters.assisted` or :mod:`idp.counters.review`, which check the
office, the session and the citizen and audit every refusal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import jdatetime
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from idp.attestations.claims import PERSON_FACTS
from idp.audit.history import TEHRAN
from idp.console import i18n
from idp.console.framework import (
    ConsoleUser,
    add_nav_link,
    add_template_folder,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.roles import Role
from idp.counters import assisted, attest, office_pages, remote_presence, review
from idp.counters.assisted import BadInput, Clerk, CodeToSend, CounterRefused, Reason
from idp.counters.config import CounterSettings
from idp.counters.words import MESSAGES
from idp.http.attestations import AttestationIn, Holder, get_attestations, issue_for
from idp.login.i18n import Language, digits_for
from idp.login.otp import OtpOutcome
from idp.login.sms import OutboxForbidden, SmsUnavailable
from idp.login.steps.mobile import sms_sender
from idp.problems import Problem
from idp.storage import counters
from idp.storage.counters import CLERK, SUPERVISOR, AssistedSession
from policies.assurance import SUBSTANTIAL

log = logging.getLogger("hoviyat.counters")

i18n.add_messages(MESSAGES)
add_template_folder(Path(__file__).parent / "templates")
add_nav_link("/console/counter", "counter.nav", Role.COUNTER_CLERK, Role.COUNTER_SUPERVISOR)
add_nav_link("/console/counter/offices", "counter.offices.nav", Role.ADMIN)

router = APIRouter(prefix="/counter", include_in_schema=False)

clerk_user = require_role(Role.COUNTER_CLERK)
supervisor_user = require_role(Role.COUNTER_SUPERVISOR)
any_counter_user = require_role(Role.COUNTER_CLERK, Role.COUNTER_SUPERVISOR)

# Refusals the clerk can correct on the same form; the rest are a 403 page.
_STATUS = {Reason.MOBILE_NOT_OWNED: 400, Reason.TOO_MANY_CODES: 429}


def _settings(request: Request) -> CounterSettings:
    """Read once per app, on first use (each app follows its own environment)."""
    found: CounterSettings | None = getattr(request.app.state, "counter_settings", None)
    if found is None:
        found = CounterSettings()
        request.app.state.counter_settings = found
    return found


def _clerk(user: ConsoleUser) -> Clerk:
    return Clerk(
        user.person_key, user.display_name, user.acr, frozenset(r.value for r in user.roles)
    )


def _refused(request: Request, refused: CounterRefused) -> HTMLResponse:
    return render(
        request,
        "refused.html",
        {
            "message_key": f"counter.refused.{refused.reason.value}",
            "message_values": {},
            "tracking_code": refused.tracking_code,
        },
        status_code=_STATUS.get(refused.reason, 403),
        title_key="console.refused.title",
    )


Done = TypeVar("Done")


async def _attempt(
    request: Request,
    act: Callable[..., Done],
    *args: Any,
    bad_input: Callable[[BadInput], Response] | None = None,
    refusal: Callable[[CounterRefused], Response] | None = None,
) -> Done | Response:
    """Run a counter act in a worker thread. A refusal (the act has audited it) becomes
    its page (``refusal``, else the 403 page); a bad input the page ``bad_input``
    renders (without it, the error propagates). The caller returns a Response as is."""
    try:
        return await run_in_threadpool(act, *args)
    except BadInput as bad:
        if bad_input is None:
            raise
        return bad_input(bad)
    except CounterRefused as refused:
        return refusal(refused) if refusal is not None else _refused(request, refused)


def _tehran(moment: datetime, language: Language) -> str:
    local = moment.astimezone(TEHRAN)
    if language.code == "fa":
        return digits_for(
            jdatetime.datetime.fromgregorian(datetime=local).strftime("%Y/%m/%d %H:%M"), language
        )
    return local.strftime("%Y-%m-%d %H:%M")


def _field(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _home(
    request: Request,
    user: ConsoleUser,
    *,
    status_code: int = 200,
    error_key: str | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    with hoviyat.db.read() as db:
        mine = counters.memberships(db, user.person_key)
        offices = {m.office_id: counters.office(db, m.office_id) for m in mine}
    clerk_at = [offices[m.office_id] for m in mine if m.role == CLERK and offices[m.office_id]]
    supervised = [
        offices[m.office_id] for m in mine if m.role == SUPERVISOR and offices[m.office_id]
    ]
    return render(
        request,
        "counter/home.html",
        {
            "clerk_offices": clerk_at if Role.COUNTER_CLERK in user.roles else [],
            "supervised": supervised if Role.COUNTER_SUPERVISOR in user.roles else [],
            "error_key": error_key,
            "values": values or {},
        },
        status_code=status_code,
        title_key="counter.title",
    )


@router.get("")
def counter_home(request: Request, user: ConsoleUser = Depends(any_counter_user)) -> HTMLResponse:
    return _home(request, user)


def _send(request: Request, to_send: CodeToSend) -> bool:
    """Text the code (after its session committed); a text that fails withdraws the code."""
    text = i18n.translate(
        "counter.sms", language_of(request), code=to_send.code, office=to_send.office_name
    )
    try:
        sms_sender(request).send(to_send.mobile, text)
    except (SmsUnavailable, OutboxForbidden) as exc:
        log.error("presence code not sent: %s", exc)
        assisted.withdraw(hoviyat_of(request), to_send.session_id)
        return False
    return True


def _session_url(request: Request, session_id: str, notice: str = "") -> str:
    return href(language_of(request), f"/console/counter/sessions/{session_id}", notice=notice)


@router.post("/sessions")
async def start(request: Request, user: ConsoleUser = Depends(clerk_user)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    hoviyat = hoviyat_of(request)
    values = {
        "office_id": _field(form, "office_id", 11),
        "national_code": _field(form, "national_code", 20),
        "mobile": _field(form, "mobile", 20),
    }
    to_send = await _attempt(
        request,
        assisted.start,
        hoviyat,
        _settings(request),
        _clerk(user),
        values["office_id"],
        values["national_code"],
        values["mobile"],
        bad_input=lambda bad: _home(
            request, user, status_code=400, error_key=f"counter.err.{bad.field}", values=values
        ),
    )
    if isinstance(to_send, Response):
        return to_send
    if not await run_in_threadpool(_send, request, to_send):
        return _home(request, user, status_code=503, error_key="counter.err.sms", values=values)
    return RedirectResponse(_session_url(request, to_send.session_id, "code_sent"), 303)


def _session_page(
    request: Request,
    user: ConsoleUser,
    session_id: str,
    *,
    status_code: int = 200,
    notice_key: str | None = None,
    notice_values: dict[str, str] | None = None,
    error_key: str | None = None,
    result: assisted.ActResult | None = None,
    link: remote_presence.Link | None = None,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    try:
        row, office = assisted.session_of(hoviyat, _clerk(user), session_id)
    except CounterRefused as refused:
        return _refused(request, refused)
    language = language_of(request)
    state = _state(row)
    offer_remote = state == "awaiting" and remote_presence.offered(hoviyat, row.citizen_key)
    if link is None and offer_remote:
        # Shown at once while none is open; an open one is not replaced by a reload (the
        # citizen may be reading it), only by the clerk's "New QR code".
        link = remote_presence.link_state(hoviyat, row.id)
        if link is None:
            try:
                link = remote_presence.issue_link(hoviyat, _clerk(user), row.id)
            except CounterRefused:  # ended or proven meanwhile (audited): shown on reload
                link = None
    return render(
        request,
        "counter/session.html",
        {
            "row": row,
            "office": office,
            "state": state,
            "offer_remote": offer_remote,
            "link": link,
            "link_until": _tehran(link.expires_at, language) if link else "",
            "link_parts": _typed_url(link.url) if link and link.url else [],
            "link_qr": remote_presence.qr_svg(link.url, title=_qr_title(language))
            if link and link.url
            else "",
            "check_code": digits_for(link.check_code, language) if link else "",
            "until": _tehran(row.expires_at, language),
            "services": office.services,
            "facts": PERSON_FACTS,
            "counter_notice": notice_key,
            "counter_notice_values": notice_values or {},
            "error_key": error_key,
            "result": result,
        },
        status_code=status_code,
        title_key="counter.session.title",
    )


def _typed_url(url: str) -> list[str]:
    """The URL as a person types it, the token in dashed groups (accepted as typed), in
    pieces a narrow screen may break between (after each slash and dash)."""
    base, token = url.rsplit("/", 1)
    return re.findall(r"[^/-]*[/-]?", f"{base}/{remote_presence.grouped(token)}")[:-1]


def _qr_title(language: Language) -> str:
    return i18n.translate("counter.remote.qr", language)


def _state(row: AssistedSession) -> str:
    if row.ended_at is not None:
        return "ended"
    if row.expires_at <= datetime.now(UTC):
        return "expired"
    return "present" if row.present_at is not None else "awaiting"


_NOTICES = {"code_sent": "counter.code_sent", "present": "counter.presence.accepted"}


@router.get("/sessions/{session_id}")
def session_page(
    request: Request, session_id: str, notice: str = "", user: ConsoleUser = Depends(clerk_user)
) -> HTMLResponse:
    return _session_page(request, user, session_id[:40], notice_key=_NOTICES.get(notice))


@router.post("/sessions/{session_id}/presence")
async def presence(
    request: Request, session_id: str, user: ConsoleUser = Depends(clerk_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    hoviyat = hoviyat_of(request)
    checked = await _attempt(
        request,
        assisted.prove_presence,
        hoviyat,
        _clerk(user),
        session_id[:40],
        _field(form, "code", 20),
    )
    if isinstance(checked, Response):
        return checked
    if checked is OtpOutcome.ACCEPTED:
        return RedirectResponse(_session_url(request, session_id[:40], "present"), 303)
    left = ""
    if checked is OtpOutcome.WRONG:
        with hoviyat.db.read() as db:
            row = counters.session_row(db, session_id[:40])
        remaining = max(0, row.code_max_attempts - row.code_attempts) if row else 0
        left = digits_for(str(remaining), language_of(request))
    return _session_page(
        request,
        user,
        session_id[:40],
        status_code=400,
        error_key=f"counter.presence.{checked.value}",
        notice_values={"left": left},
    )


@router.post("/sessions/{session_id}/link")
async def confirmation_link(
    request: Request, session_id: str, user: ConsoleUser = Depends(clerk_user)
) -> Response:
    """A fresh QR code for the citizen's own phone (the last link stops working)."""
    form = await request.form()
    check_csrf(request, form)
    link = await _attempt(
        request, remote_presence.issue_link, hoviyat_of(request), _clerk(user), session_id[:40]
    )
    if isinstance(link, Response):
        return link
    return _session_page(request, user, session_id[:40], link=link)


@router.post("/sessions/{session_id}/resend")
async def resend(
    request: Request, session_id: str, user: ConsoleUser = Depends(clerk_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    to_send = await _attempt(
        request,
        assisted.resend,
        hoviyat_of(request),
        _settings(request),
        _clerk(user),
        session_id[:40],
        _field(form, "national_code", 20),
        _field(form, "mobile", 20),
        bad_input=_bad_on_session_page(request, user, session_id[:40]),
    )
    if isinstance(to_send, Response):
        return to_send
    if not await run_in_threadpool(_send, request, to_send):
        return _session_page(
            request, user, session_id[:40], status_code=503, error_key="counter.err.sms"
        )
    return RedirectResponse(_session_url(request, to_send.session_id, "code_sent"), 303)


def _bad_on_session_page(
    request: Request, user: ConsoleUser, session_id: str
) -> Callable[[BadInput], Response]:
    """The session page again, saying which typed value was wrong."""

    def shown(bad: BadInput) -> Response:
        return _session_page(
            request, user, session_id, status_code=400, error_key=f"counter.err.{bad.field}"
        )

    return shown


def _issuer(request: Request) -> attest.Issue:
    """Issue through the attestation service, for a citizen whose presence a code texted
    to their registered mobile proved: level substantial, as at a login."""
    hoviyat = hoviyat_of(request)

    def issue(national_code: str, purpose: str, facts: list[str]) -> dict[str, Any]:
        holder = Holder(national_code, SUBSTANTIAL, None, None, None)
        try:
            body = AttestationIn(purpose=purpose, facts=facts)
            return issue_for(hoviyat, get_attestations(request), holder, body)
        except Problem as problem:
            raise BadInput("attestation", problem.detail) from None
        except ValueError as error:  # the request model's own checks
            raise BadInput("attestation", str(error)) from None

    return issue


@router.post("/sessions/{session_id}/act")
async def run_service(
    request: Request, session_id: str, user: ConsoleUser = Depends(clerk_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    service = _field(form, "service", 64)
    typed = {
        name: _field(form, name, 100)
        for name in ("national_code", "first_name", "last_name", "birth_date", "mobile")
    }
    typed["purpose"] = _field(form, "purpose", 600)
    typed["facts"] = ",".join(f for f in form.getlist("facts")[:16] if isinstance(f, str))
    bad_input = _bad_on_session_page(request, user, session_id[:40])
    if service == attest.SERVICE:
        result = await _attempt(
            request,
            attest.issue_attestation,
            hoviyat_of(request),
            _clerk(user),
            session_id[:40],
            typed,
            _issuer(request),
            bad_input=bad_input,
        )
    else:
        result = await _attempt(
            request,
            assisted.run_service,
            hoviyat_of(request),
            _clerk(user),
            session_id[:40],
            service[:64],
            typed,
            bad_input=bad_input,
        )
    if isinstance(result, Response):
        return result
    return _session_page(request, user, session_id[:40], result=result)


@router.post("/sessions/{session_id}/end")
async def end(
    request: Request, session_id: str, user: ConsoleUser = Depends(clerk_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    ended = await _attempt(
        request, assisted.end, hoviyat_of(request), _clerk(user), session_id[:40]
    )
    if isinstance(ended, Response):
        return ended
    return RedirectResponse(_session_url(request, session_id[:40]), 303)


def _queue_page(
    request: Request,
    user: ConsoleUser,
    office_id: str,
    *,
    status_code: int = 200,
    notice_key: str | None = None,
    error_key: str | None = None,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    try:
        office, rows = review.queue(
            hoviyat, _clerk(user), office_id[:11], _settings(request).queue_size
        )
    except CounterRefused as refused:
        return _refused(request, refused)
    language = language_of(request)
    sessions = [
        {
            "row": row,
            "started": _tehran(row.created_at, language),
            "state": _state(row),
            "acts": digits_for(str(row.acts), language),
        }
        for row in rows
    ]
    return render(
        request,
        "counter/review.html",
        {
            "office": office,
            "sessions": sessions,
            "counter_notice": notice_key,
            "error_key": error_key,
        },
        status_code=status_code,
        title_key="counter.review.title",
    )


@router.get("/offices/{office_id}/review")
def review_queue(
    request: Request, office_id: str, user: ConsoleUser = Depends(supervisor_user)
) -> HTMLResponse:
    return _queue_page(request, user, office_id)


@router.post("/offices/{office_id}/flag")
async def flag(
    request: Request, office_id: str, user: ConsoleUser = Depends(supervisor_user)
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    session_id = _field(form, "session_id", 40)
    flagged = await _attempt(
        request,
        review.flag,
        hoviyat_of(request),
        _clerk(user),
        office_id[:11],
        session_id[:40],
        _field(form, "reason", 600),
        bad_input=lambda _bad: _queue_page(
            request, user, office_id, status_code=400, error_key="counter.err.reason"
        ),
    )
    if isinstance(flagged, Response):
        return flagged
    return _queue_page(request, user, office_id, notice_key="counter.review.flag_done")


# The administrator's offices page, served beside the counter's own pages.
router.include_router(office_pages.router)
