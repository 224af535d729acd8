"""What every login step shares: the posted form's checks, its typed outcome, its audit events.

Every POST checks the CSRF token first and changes nothing when it fails;
then the interaction must still be waiting for the citizen. :func:`run_step`
does both, opens the step's transaction, reads the browser's session, and
turns the step's outcome into the response (events appended in the same
transaction, so a step and its audit entry commit together).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, append_many
from idp.context import Hoviyat
from idp.login import sessions
from idp.login.flow import Flow, load_flow, person_event
from idp.login.i18n import MESSAGES, Language, pick_language, translate
from idp.login.render import csrf_ok, hoviyat_of, message, page_url, see_other
from idp.storage.login import LoginSession
from verifiers.registry.base import RegistryUnavailable

HOUR = 3600


@dataclass(frozen=True, slots=True)
class StepEvent:
    """The audit entry of one step of a login, under the interaction's tracking code.

    ``operation`` names the step (identify, mobile, otp, entity, consent,
    cancel); ``national_code`` is hashed with the subject pepper, never stored.
    """

    operation: str
    outcome: str
    national_code: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    event_type: str = "login"

    def audit(self, hoviyat: Hoviyat, flow: Flow) -> AuditEvent:
        return person_event(
            hoviyat,
            tracking_code=flow.interaction.tracking_code,
            event_type=self.event_type,
            operation=self.operation,
            outcome=self.outcome,
            national_code=self.national_code,
            flow=flow,
            **self.detail,
        )


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """A new session token for the browser (a login, or a step-up that rotated it)."""

    token: str
    max_age: int


@dataclass(frozen=True, slots=True)
class Redirect:
    """The step is done (or has nothing to do): 303 to ``url``."""

    url: str
    events: tuple[StepEvent, ...] = ()
    cookie: SessionCookie | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """The step answers with a page: its form again with the errors, or a message."""

    page: HTMLResponse
    events: tuple[StepEvent, ...] = ()


Outcome = Redirect | Shown


@dataclass(frozen=True, slots=True)
class Posted:
    """A login form that passed the common checks: whose login, in which language."""

    request: Request
    hoviyat: Hoviyat
    flow: Flow
    language: Language

    @property
    def login_url(self) -> str:
        """``/login`` for this interaction: it shows whatever step is left."""
        return page_url("/login", self.language, self.flow.interaction.id)

    def back_to_login(self, *events: StepEvent) -> Redirect:
        return Redirect(self.login_url, events)


def open_posted(
    request: Request, db_session: Session, interaction: str, lang: str, csrf_token: str
) -> Posted | HTMLResponse:
    """Every login form's first checks: the CSRF token, then a login still in progress."""
    hoviyat = hoviyat_of(request)
    flow = load_flow(db_session, interaction, hoviyat.policies)
    language = pick_language(lang, flow.ui_locales if flow else None)
    if not csrf_ok(request, csrf_token):
        return message(request, language, "err.csrf", 403)
    if flow is None:
        return message(request, language, "err.interaction", 400)
    return Posted(request, hoviyat, flow, language)


def registry_down(request: Request, language: Language, exc: RegistryUnavailable) -> HTMLResponse:
    """503 naming the registry that did not answer, with when to try again."""
    key = f"registry.{exc.registry}"
    return message(
        request,
        language,
        "err.registry",
        503,
        headers={"Retry-After": str(exc.retry_after)},
        registry=translate(key if key in MESSAGES else "registry.deeds", language),
    )


Step = Callable[[Posted, Session, LoginSession | None], Outcome]


def take_step(
    request: Request, interaction: str, lang: str, csrf_token: str, step: Step
) -> tuple[Posted, Outcome] | HTMLResponse:
    """The common checks, then ``step`` in one transaction with its audit events.

    A registry that does not answer ends the step with 503; what the step
    wrote before asking it (an attempt counted) is kept.
    """
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db_session:
        posted = open_posted(request, db_session, interaction, lang, csrf_token)
        if isinstance(posted, HTMLResponse):
            return posted
        session = sessions.session_row(request, db_session)
        try:
            outcome = step(posted, db_session, session)
        except RegistryUnavailable as exc:
            return registry_down(request, posted.language, exc)
        record(db_session, posted, outcome.events)
    return posted, outcome


def record(db_session: Session, posted: Posted, events: Sequence[StepEvent]) -> None:
    """Append the step's audit entries in its transaction (one statement either way)."""
    if len(events) == 1:
        append(db_session, events[0].audit(posted.hoviyat, posted.flow))
    elif events:
        append_many(db_session, [event.audit(posted.hoviyat, posted.flow) for event in events])


def respond(posted: Posted, outcome: Outcome) -> Response:
    if isinstance(outcome, Shown):
        return outcome.page
    response = see_other(outcome.url)
    if outcome.cookie is not None:
        sessions.set_session_cookie(
            response, posted.hoviyat.settings, outcome.cookie.token, outcome.cookie.max_age
        )
    return response


def run_step(
    request: Request, interaction: str, lang: str, csrf_token: str, step: Step
) -> Response:
    """:func:`take_step`, answered."""
    taken = take_step(request, interaction, lang, csrf_token, step)
    if isinstance(taken, Response):
        return taken
    return respond(*taken)
