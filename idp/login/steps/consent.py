"""Consent step: the citizen allows (remembered for this client and claims) or denies."""

from __future__ import annotations

from sqlmodel import Session

from idp.login.consent import remember_consent
from idp.login.flow import refuse
from idp.login.steps.posted import Outcome, Posted, Redirect, StepEvent
from idp.storage import interactions
from idp.storage.login import LoginSession


def decide(
    posted: Posted, db_session: Session, session: LoginSession | None, decision: str
) -> Outcome:
    flow = posted.flow
    if session is None or decision not in ("allow", "deny"):
        return posted.back_to_login()
    detail = {"claims": flow.claims}
    if decision == "deny":
        denied = StepEvent("consent", "denied", session.national_code, detail, "consent")
        return Redirect(refuse(db_session, flow), (denied,))
    remember_consent(db_session, session.national_code, flow.client.client_id, flow.claims)
    flow.interaction.consent_granted = True
    interactions.save(db_session, flow.interaction)
    granted = StepEvent("consent", "granted", session.national_code, detail, "consent")
    return posted.back_to_login(granted)
