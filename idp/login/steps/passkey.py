"""Passkeys: registration inside a session at substantial, sign-in to level high.

Four JSON endpoints the high page's script calls (``/login/passkeys/...``),
each a form POST carrying the CSRF token like every login form. A passkey is
bound only to a session already at substantial (identity proofed with the
civil registry and the person's own mobile): eIDAS high needs the
authenticator bound after proofing at substantial or better. Signing in with
it raises the session to high with amr ``hwk`` + ``user`` (RFC 8176) and
rotates the cookie token, as every step-up does.

Challenges are stored with the session (and the interaction) and spent once
before anything is verified, so a replayed answer, or one made for another
session, finds no challenge. Each refusal is audited with its reason; a
signature counter that went backwards (a cloned authenticator) refuses the
sign-in and says so in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from idp.audit.log import append, subject_hash
from idp.context import Hoviyat
from idp.login import keys, sessions
from idp.login.flow import Flow, load_flow, needs_fresh_login, person_event
from idp.login.i18n import Language, pick_language, translate
from idp.login.render import NO_STORE, csrf_ok, hoviyat_of, page_url
from idp.login.sms import OutboxForbidden, SmsUnavailable
from idp.login.steps.mobile import sms_sender
from idp.login.webauthn import (
    PasskeyRefused,
    assertion_credential_id,
    authentication_options,
    claimed_challenge,
    new_challenge,
    registration_options,
    relying_party,
    user_handle,
    verify_authentication,
    verify_registration,
)
from idp.problems import Problem
from idp.storage import passkeys
from idp.storage.login import LoginSession
from policies import assurance

log = logging.getLogger(__name__)

FIELDS = ("interaction", "lang", "csrf_token", "credential")


@dataclass(frozen=True, slots=True)
class Ceremony:
    """A passkey request that passed the common checks: whose session, which login."""

    request: Request
    hoviyat: Hoviyat
    db: Session
    session: LoginSession
    flow: Flow | None
    language: Language

    @property
    def person_hash(self) -> str:
        return subject_hash(self.hoviyat.secrets.subject_pepper, self.session.national_code)

    @property
    def next_url(self) -> str:
        """Where the page goes after the ceremony: the login's next step, or the account page."""
        if self.flow is not None:
            return page_url("/login", self.language, self.flow.interaction.id)
        return page_url("/login/passkeys", self.language)

    def audit(self, event_type: str, operation: str, outcome: str, **detail: Any) -> None:
        """One audit entry in the ceremony's transaction (kept when the ceremony is refused)."""
        tracking = self.flow.interaction.tracking_code if self.flow else self.session.tracking_code
        append(
            self.db,
            person_event(
                self.hoviyat,
                tracking_code=tracking,
                event_type=event_type,
                operation=operation,
                outcome=outcome,
                national_code=self.session.national_code,
                flow=self.flow,
                session_id=self.session.id,
                **detail,
            ),
        )


def _problem(request: Request, status: int, slug: str, title: str, detail: str) -> JSONResponse:
    response = Problem(status, slug, title, detail, headers=NO_STORE).response(
        instance=request.url.path
    )
    return response


def _refused(ceremony: Ceremony, exc: PasskeyRefused, status: int = 400) -> JSONResponse:
    return _problem(
        ceremony.request, status, "passkey-refused", "Passkey refused", f"refused: {exc.reason}"
    )


@contextmanager
def _ceremony(
    request: Request, fields: dict[str, str], *, needs_flow: bool
) -> Iterator[Ceremony | JSONResponse]:
    """CSRF first, then a live session at substantial or more, then the login (if any)."""
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db:
        flow = None
        if fields["interaction"] or needs_flow:
            flow = load_flow(db, fields["interaction"], hoviyat.policies)
        language = pick_language(fields["lang"], flow.ui_locales if flow else None)
        if not csrf_ok(request, fields["csrf_token"]):
            yield _problem(request, 403, "csrf", "Form expired", "reload the page and try again")
            return
        if flow is None and (fields["interaction"] or needs_flow):
            yield _problem(
                request, 400, "interaction", "Login not in progress", "start again from the app"
            )
            return
        session = sessions.session_row(request, db)
        now = datetime.now(UTC)
        fresh = session is not None and (flow is None or not needs_fresh_login(flow, session, now))
        if session is None or not fresh:
            yield _problem(request, 401, "no-session", "Not logged in", "log in first")
            return
        # A passkey is bound, and used, only after proofing at substantial (eIDAS high).
        if not assurance.satisfies(session.acr, assurance.SUBSTANTIAL):
            yield _problem(
                request,
                403,
                "substantial-required",
                "Level substantial first",
                "confirm your mobile number first",
            )
            return
        yield Ceremony(request, hoviyat, db, session, flow, language)


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


def _issue(ceremony: Ceremony, purpose: str) -> bytes:
    challenge = new_challenge()
    now = datetime.now(UTC)
    ttl = ceremony.hoviyat.login_settings.webauthn_challenge_ttl_seconds
    passkeys.issue_challenge(
        ceremony.db,
        challenge=bytes_to_base64url(challenge),
        session_id=ceremony.session.id,
        purpose=purpose,
        interaction_id=ceremony.flow.interaction.id if ceremony.flow else None,
        expires_at=now + timedelta(seconds=ttl),
        now=now,
    )
    return challenge


def _spend(ceremony: Ceremony, credential: str, purpose: str) -> bytes:
    """The challenge the answer claims, taken once: this session's, this purpose, this login."""
    claimed = claimed_challenge(credential)
    spent = passkeys.spend(
        ceremony.db,
        challenge=claimed,
        session_id=ceremony.session.id,
        purpose=purpose,
        now=datetime.now(UTC),
    )
    interaction = ceremony.flow.interaction.id if ceremony.flow else None
    if spent is None or spent.interaction_id != interaction:
        raise PasskeyRefused("challenge_unknown")
    return base64url_to_bytes(spent.challenge)


def registration_options_json(request: Request, fields: dict[str, str]) -> Response:
    with _ceremony(request, fields, needs_flow=False) as ceremony:
        if isinstance(ceremony, Response):
            return ceremony
        settings = ceremony.hoviyat.login_settings
        challenge = _issue(ceremony, passkeys.REGISTER)
        handle_key = keys.derived_key(ceremony.hoviyat.secrets, keys.WEBAUTHN_USER)
        code = ceremony.session.national_code
        options = registration_options(
            relying_party(ceremony.hoviyat.settings.issuer),
            settings,
            challenge=challenge,
            handle=user_handle(handle_key, code),
            # Shown in the authenticator's account list: enough to tell accounts apart.
            user_name=f"{code[:3]}****{code[-3:]}",
            existing=passkeys.of_person(ceremony.db, ceremony.person_hash),
        )
        return _json(options)


def register(request: Request, fields: dict[str, str]) -> Response:
    notice: tuple[str, str] | None = None
    with _ceremony(request, fields, needs_flow=False) as ceremony:
        if isinstance(ceremony, Response):
            return ceremony
        rp = relying_party(ceremony.hoviyat.settings.issuer)
        try:
            challenge = _spend(ceremony, fields["credential"], passkeys.REGISTER)
            new = verify_registration(
                rp, ceremony.hoviyat.login_settings, fields["credential"], challenge
            )
        except PasskeyRefused as exc:
            ceremony.audit("passkey", "register", exc.reason)
            return _refused(ceremony, exc)
        row = passkeys.Passkey(
            credential_id=new.credential_id,
            person_hash=ceremony.person_hash,
            public_key=new.public_key,
            sign_count=new.sign_count,
            aaguid=new.aaguid,
            transports=new.transports,
            created_at=datetime.now(UTC),
            last_used_at=None,
        )
        if not passkeys.add(ceremony.db, row):
            ceremony.audit("passkey", "register", "already_registered")
            return _refused(ceremony, PasskeyRefused("already_registered"), 409)
        ceremony.audit("passkey", "register", "registered", aaguid=new.aaguid)
        answer = _json({"registered": True, "next": ceremony.next_url})
        if ceremony.session.mobile:
            text = translate("sms.passkey_added", ceremony.language)
            notice = (ceremony.session.mobile, text)
    if notice is not None:
        _notify(request, *notice)
    return answer


def _notify(request: Request, mobile: str, text: str) -> None:
    """Tell the person, on the mobile they proved, that a passkey now signs in as them.

    Binding at substantial means one stolen text-message code is enough to bind
    a thief's passkey; the notice, sent once the passkey is committed, is how
    the person learns of it. Best effort: the audit entry is the record.
    """
    try:
        sms_sender(request).send(mobile, text)
    except (SmsUnavailable, OutboxForbidden) as exc:
        log.warning("passkey notice not sent: %s", exc)


def authentication_options_json(request: Request, fields: dict[str, str]) -> Response:
    with _ceremony(request, fields, needs_flow=True) as ceremony:
        if isinstance(ceremony, Response):
            return ceremony
        allowed = passkeys.of_person(ceremony.db, ceremony.person_hash)
        if not allowed:
            return _problem(request, 409, "no-passkey", "No passkey", "register a passkey first")
        challenge = _issue(ceremony, passkeys.AUTHENTICATE)
        rp = relying_party(ceremony.hoviyat.settings.issuer)
        return _json(authentication_options(rp, challenge=challenge, allowed=allowed))


def authenticate(request: Request, fields: dict[str, str]) -> Response:
    with _ceremony(request, fields, needs_flow=True) as ceremony:
        if isinstance(ceremony, Response):
            return ceremony
        rp = relying_party(ceremony.hoviyat.settings.issuer)
        try:
            challenge = _spend(ceremony, fields["credential"], passkeys.AUTHENTICATE)
            credential_id = assertion_credential_id(fields["credential"])
            passkey = passkeys.by_credential_id(ceremony.db, credential_id)
            # §7.2 step 6: the credential must be this person's (not merely a valid one).
            if passkey is None or passkey.person_hash != ceremony.person_hash:
                raise PasskeyRefused("not_yours")
            count = verify_authentication(rp, fields["credential"], challenge, passkey)
            if not passkeys.record_use(ceremony.db, credential_id, count, datetime.now(UTC)):
                ceremony.audit(
                    "login",
                    "passkey",
                    "sign_count_regressed",
                    stored_count=passkey.sign_count,
                    presented_count=count,
                )
                return _refused(ceremony, PasskeyRefused("sign_count_regressed"), 403)
        except PasskeyRefused as exc:
            ceremony.audit("login", "passkey", exc.reason)
            return _refused(ceremony, exc)
        session = ceremony.session
        token = sessions.raise_level(
            ceremony.db,
            session,
            acr=assurance.HIGH,
            amr=[assurance.AMR_HWK, assurance.AMR_USER],
            mobile=None,
        )
        ceremony.audit("login", "passkey", "success", acr=assurance.HIGH)
        response = _json({"next": ceremony.next_url})
        # The cookie lives as long as the session, which the step-up does not extend.
        remaining = int((session.expires_at - datetime.now(UTC)).total_seconds())
        max_age = max(1, min(remaining, ceremony.hoviyat.login_settings.session_ttl_seconds))
        sessions.set_session_cookie(response, ceremony.hoviyat.settings, token, max_age)
        return response
