"""One-time code step: the code texted to the citizen raises the session to level substantial.

Each check spends an attempt in the database first (see :mod:`idp.login.otp`);
an accepted code rotates the session's cookie token (a token seen before the
step-up is worth nothing after it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from idp.login import keys, otp, sessions
from idp.login.forms import Entered, otp_form
from idp.login.i18n import digits_for, translate
from idp.login.render import message
from idp.login.steps.posted import Outcome, Posted, Redirect, SessionCookie, Shown, StepEvent
from idp.storage import login_sessions
from idp.storage.login import LoginOtp, LoginSession
from policies import assurance

_ERRORS = {otp.OtpOutcome.WRONG: "err.otp_wrong", otp.OtpOutcome.EXPIRED: "err.otp_expired"}


def check(posted: Posted, db_session: Session, session: LoginSession | None, typed: str) -> Outcome:
    flow, language = posted.flow, posted.language
    pending = otp.pending_code(db_session, session.id, flow.interaction.id) if session else None
    if session is None or pending is None:
        return posted.back_to_login()

    def again(status: int, key: str, *events: StepEvent, **shown: object) -> Shown:
        errors = {"otp": translate(key, language, **shown)}
        page = otp_form(posted.request, flow, language, pending.mobile, Entered(status, errors))
        return Shown(page, events)

    code = otp.normalize(typed)
    if len(code) != 6 or not code.isdigit():
        return again(400, "err.otp_format")
    key = keys.derived_key(posted.hoviyat.secrets, keys.OTP)
    outcome = otp.check_code(db_session, key=key, otp_id=pending.id, code=code)
    if outcome is not otp.OtpOutcome.ACCEPTED:
        refused = StepEvent("otp", f"otp_{outcome.value}", session.national_code)
        if outcome is otp.OtpOutcome.USED:
            return _already_used(posted, db_session, session, pending, refused)
        left = otp.attempts_now(db_session, pending.id)
        error = _ERRORS.get(outcome, "err.otp_exhausted")
        if outcome is otp.OtpOutcome.WRONG and left == 0:
            error = "err.otp_exhausted"
        return again(400, error, refused, left=digits_for(str(left), language))
    token = sessions.raise_level(
        db_session,
        session,
        acr=assurance.SUBSTANTIAL,
        amr=[assurance.AMR_SMS, assurance.AMR_OTP],
        mobile=pending.mobile,
    )
    accepted = StepEvent(
        "otp",
        "success",
        session.national_code,
        {"acr": assurance.SUBSTANTIAL, "session_id": session.id},
    )
    # The cookie lives as long as the session, which the step-up does not extend.
    remaining = int((session.expires_at - datetime.now(UTC)).total_seconds())
    max_age = max(1, min(remaining, posted.hoviyat.login_settings.session_ttl_seconds))
    return Redirect(posted.login_url, (accepted,), SessionCookie(token, max_age))


def _already_used(
    posted: Posted,
    db_session: Session,
    session: LoginSession,
    pending: LoginOtp,
    refused: StepEvent,
) -> Shown:
    """The code was accepted (or replaced) by another submission, typically the
    same browser's double click or a second tab: say so, never "wrong too many
    times". The session row, read after the code's conditional UPDATE waited
    for that other submission to commit, tells whether the step is done."""
    latest = login_sessions.reread(db_session, session.id)
    done = (
        latest is not None
        and latest.ended_at is None
        and assurance.satisfies(latest.acr, assurance.SUBSTANTIAL)
        and latest.mobile == pending.mobile
    )
    if done:
        page = message(
            posted.request,
            posted.language,
            "otp.already_accepted",
            409,
            continue_url=posted.login_url,
        )
        return Shown(page, (refused,))
    errors = {"otp": translate("err.otp_used", posted.language)}
    page = otp_form(
        posted.request, posted.flow, posted.language, pending.mobile, Entered(409, errors)
    )
    return Shown(page, (refused,))
