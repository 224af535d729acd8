"""Each step's form, and the dispatcher that shows the step a login is at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from idp.audit.log import subject_hash
from idp.login import entities, otp, sessions
from idp.login.flow import Flow, finished, next_step
from idp.login.i18n import Language, claim_label, digits_for, pick_language, translate
from idp.login.render import hoviyat_of, message, render, see_other
from idp.oidc import completion
from idp.storage import passkeys
from idp.storage.login import AuthenticatedPerson, LoginSession


def client_name(flow: Flow) -> str:
    return flow.client.name


def mask(mobile: str) -> str:
    return mobile[:4] + "***" + mobile[-4:]


def show_step(
    request: Request, db_session: Session, flow: Flow, language: Language
) -> HTMLResponse | AuthenticatedPerson:
    """The page of the step this login is at; when none is left, who logged in (to close it)."""
    session = sessions.session_row(request, db_session)
    pending = (
        otp.pending_code(db_session, session.id, flow.interaction.id)
        if session is not None
        else None
    )
    step = next_step(db_session, flow, session, otp_pending=pending is not None)
    if step == "identify" or session is None:
        return identify_form(request, flow, language)
    if step == "high":
        return high_form(request, db_session, flow, language, session)
    if step in ("mobile", "otp"):
        if pending is None:
            return mobile_form(request, flow, language)
        return otp_form(request, flow, language, pending.mobile)
    if step == "entity":
        return entity_form(request, flow, language, session)
    if step == "consent":
        return consent_form(request, flow, language)
    return finished(flow, session)


async def close_login(
    request: Request, flow: Flow, language: Language, login: AuthenticatedPerson
) -> HTMLResponse | RedirectResponse:
    """The last step is done: close the interaction and answer the client in one write.

    Through the group committer, so the code, its grant and their audit entry
    commit with other requests' writes. A login closed meanwhile by another
    request (second tab, other worker) is told it is over.
    """
    hoviyat = hoviyat_of(request)
    interaction_id = flow.interaction.id

    def close(db_session: Session) -> str | None:
        if not completion.close_and_consume(db_session, interaction_id, login):
            return None
        return completion.answer(db_session, hoviyat, interaction_id, consumed=True)

    url = await hoviyat.committer.run(close)
    if url is None:
        return message(request, language, "err.interaction", 400)
    return see_other(url)


def first_page(request: Request, flow: Flow) -> HTMLResponse:
    """The identify form, answered by /authorize itself to a browser that has no session.

    Keycloak does the same: the browser is spared a redirect and a request
    (the form still posts to /login/identify, carrying the interaction id).
    A browser with a session cookie goes through /login, which works out
    what is left to do (step-up, entity, consent, or nothing).
    """
    return identify_form(request, flow, pick_language(None, flow.ui_locales))


@dataclass(frozen=True, slots=True)
class Entered:
    """A form shown again: its status, the error next to each field, what was typed."""

    status_code: int = 200
    errors: dict[str, str] | None = None
    values: dict[str, str] | None = None


FRESH = Entered()


def _form(
    request: Request,
    flow: Flow,
    language: Language,
    template: str,
    title_key: str,
    entered: Entered,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        template,
        language,
        title_key=title_key,
        status_code=entered.status_code,
        interaction_id=flow.interaction.id,
        errors=entered.errors,
        values=entered.values,
        client_name=client_name(flow),
        **context,
    )


def identify_form(
    request: Request, flow: Flow, language: Language, entered: Entered = FRESH
) -> HTMLResponse:
    if entered.values is None:
        hint = flow.login_hint
        values = {"national_code": hint} if hint and hint.isdigit() else {}
        entered = Entered(entered.status_code, entered.errors, values)
    blank = not entered.errors and not entered.values
    return _form(request, flow, language, "identify.html", "login.title", entered, blank=blank)


def mobile_form(
    request: Request, flow: Flow, language: Language, entered: Entered = FRESH
) -> HTMLResponse:
    return _form(request, flow, language, "mobile.html", "mobile.title", entered)


def otp_form(
    request: Request, flow: Flow, language: Language, mobile: str, entered: Entered = FRESH
) -> HTMLResponse:
    minutes = max(1, hoviyat_of(request).login_settings.otp_ttl_seconds // 60)
    return _form(
        request,
        flow,
        language,
        "otp.html",
        "otp.title",
        entered,
        mobile=mobile,
        masked_mobile=mask(mobile),
        minutes=digits_for(str(minutes), language),
    )


# The high page alone runs a script (the WebAuthn ceremony) and calls the
# passkey endpoints: its policy allows this origin's scripts and fetches, no more.
HIGH_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def high_form(
    request: Request, db_session: Session, flow: Flow, language: Language, session: LoginSession
) -> HTMLResponse:
    """Level high: sign in with a passkey (registering one first if the person has
    none), or with a certificate (``POST /login/certificate``)."""
    hoviyat = hoviyat_of(request)
    person = subject_hash(hoviyat.secrets.subject_pepper, session.national_code)
    return render(
        request,
        "high.html",
        language,
        title_key="high.title",
        interaction_id=flow.interaction.id,
        client_name=client_name(flow),
        has_passkey=passkeys.has_any(db_session, person),
        headers={"Content-Security-Policy": HIGH_PAGE_CSP},
    )


def entity_form(
    request: Request,
    flow: Flow,
    language: Language,
    session: LoginSession,
    entered: Entered = FRESH,
) -> HTMLResponse:
    listed: list[dict[str, str | None]] | None = None
    deeds = hoviyat_of(request).registries.deeds
    identifiers = entities.listed_entities(deeds, session.national_code)
    if identifiers is not None:
        listed = []
        today = date.today()
        for national_id in identifiers:
            found = entities.assess(
                national_id, deeds.entity(national_id), session.national_code, today
            )
            if found.entity is None:
                continue
            # Entities the person cannot act for are listed too, with the reason, so
            # nobody wonders why their company is missing.
            refusal = None
            if found.refusal is not None:
                shown = {k: digits_for(v, language) for k, v in found.refusal_values.items()}
                refusal = translate(found.refusal, language, **shown)
            listed.append(
                {
                    "national_id": national_id,
                    "name": found.entity.name,
                    "role": found.representative.role if found.representative else None,
                    "signing_authority": (
                        found.representative.signing_authority if found.representative else None
                    ),
                    "refusal": refusal,
                }
            )
    return _form(request, flow, language, "entity.html", "entity.title", entered, listed=listed)


def consent_form(request: Request, flow: Flow, language: Language) -> HTMLResponse:
    policy = flow.policy
    service_title = ""
    legal_basis = ""
    if policy is not None:
        service_title = policy.title_fa if language.code == "fa" else policy.title_en
        legal_basis = policy.legal_basis
    entity_name = None
    if flow.interaction.entity_national_id:
        entity = hoviyat_of(request).registries.deeds.entity(flow.interaction.entity_national_id)
        entity_name = entity.name if entity is not None else flow.interaction.entity_national_id
    labels: list[str] = []
    for claim in flow.claims:
        label = claim_label(claim, language)
        if label not in labels:
            labels.append(label)
    return render(
        request,
        "consent.html",
        language,
        title_key="consent.title",
        interaction_id=flow.interaction.id,
        client_name=client_name(flow),
        service_title=service_title,
        legal_basis=legal_basis,
        claim_labels=labels,
        entity_name=entity_name,
    )
