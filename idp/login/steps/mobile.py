"""Mobile step (towards level substantial): the number must be the citizen's; a code is texted.

Sending is limited per number and per national code, counted before the
mobile registry answers, so guessing which number a person owns is slow too.
The text is sent after the code is committed (it never names a code the
database lacks); a text that cannot be sent withdraws its code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session

from idp.audit.log import subject_hash
from idp.login import keys, otp
from idp.login.forms import Entered, mobile_form
from idp.login.i18n import Language, digits_for, translate
from idp.login.limits import Allowance, take
from idp.login.render import hoviyat_of, message
from idp.login.sms import OutboxForbidden, SmsSender, SmsUnavailable, build_sender
from idp.login.steps.posted import (
    HOUR,
    Outcome,
    Posted,
    Redirect,
    Shown,
    StepEvent,
    respond,
    take_step,
)
from idp.storage.login import LoginSession
from verifiers.identifiers import IdentifierError
from verifiers.mobile import normalize_mobile

log = logging.getLogger("hoviyat.login")


@dataclass(frozen=True, slots=True)
class CodeIssued(Redirect):
    """A code is stored; its text goes out once the step has committed."""

    otp_id: str = ""
    mobile: str = ""
    text: str = ""


def send_code(
    request: Request, interaction: str, lang: str, csrf_token: str, mobile: str
) -> Response:
    taken = take_step(
        request,
        interaction,
        lang,
        csrf_token,
        lambda posted, db_session, session: _issue(posted, db_session, session, mobile),
    )
    if isinstance(taken, Response):
        return taken
    posted, outcome = taken
    if isinstance(outcome, CodeIssued):
        try:
            sms_sender(request).send(outcome.mobile, outcome.text)
        except (SmsUnavailable, OutboxForbidden) as exc:
            log.error("one-time code not sent: %s", exc)
            with posted.hoviyat.db.session() as db_session:
                otp.withdraw_code(db_session, outcome.otp_id)
            return message(
                request, posted.language, "err.sms_unavailable", 503, headers={"Retry-After": "60"}
            )
    return respond(posted, outcome)


def _issue(
    posted: Posted, db_session: Session, session: LoginSession | None, typed: str
) -> Outcome:
    if session is None:
        return posted.back_to_login()
    request, hoviyat, flow, language = posted.request, posted.hoviyat, posted.flow, posted.language
    settings = hoviyat.login_settings
    values = {"mobile": typed[:20]}

    def again(status: int, key: str, **shown: object) -> Shown:
        errors = {"mobile": translate(key, language, **shown)}
        return Shown(mobile_form(request, flow, language, Entered(status, errors, values)))

    try:
        number = normalize_mobile(typed)
    except IdentifierError:
        return again(400, "err.mobile")
    nc_hash = subject_hash(hoviyat.secrets.subject_pepper, session.national_code)
    limits = [
        Allowance(f"otp:mobile:{number}", settings.otp_per_mobile_per_hour),
        Allowance(f"otp:nc:{nc_hash}", settings.otp_per_national_code_per_hour),
    ]
    wait = take(db_session, limits, HOUR)
    if wait is not None:
        return again(429, "err.too_many_codes", minutes=minutes_for(wait, language))
    if not hoviyat.registries.mobile.owns(session.national_code, number):
        shown = again(400, "err.mobile_not_owned")
        return Shown(shown.page, (StepEvent("mobile", "not_owner", session.national_code),))
    row, code = otp.issue_code(
        db_session,
        key=keys.derived_key(hoviyat.secrets, keys.OTP),
        session_id=session.id,
        interaction_id=flow.interaction.id,
        national_code=session.national_code,
        mobile=number,
        ttl_seconds=settings.otp_ttl_seconds,
        max_attempts=settings.otp_max_attempts,
    )
    text = translate("sms.code", language, code=code, client=flow.client.name)
    return CodeIssued(posted.login_url, otp_id=row.id, mobile=number, text=text)


def minutes_for(wait: int, language: Language) -> str:
    """A wait in whole minutes (at least one), in the page's digits."""
    return digits_for(str(max(1, wait // 60)), language)


def sms_sender(request: Request) -> SmsSender:
    sender: SmsSender | None = getattr(request.app.state, "login_sms_sender", None)
    if sender is None:
        hoviyat = hoviyat_of(request)
        sender = build_sender(hoviyat.settings, hoviyat.login_settings, hoviyat.db)
        request.app.state.login_sms_sender = sender
    return sender
