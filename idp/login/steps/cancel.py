"""Cancel: the citizen goes back to the app, which is told ``access_denied``."""

from __future__ import annotations

from sqlmodel import Session

from idp.login.flow import refuse
from idp.login.steps.posted import Outcome, Posted, Redirect, StepEvent
from idp.storage.login import LoginSession


def cancel(posted: Posted, db_session: Session, session: LoginSession | None) -> Outcome:
    who = session.national_code if session else None
    return Redirect(refuse(db_session, posted.flow), (StepEvent("cancel", "cancelled", who),))
