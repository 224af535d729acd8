"""Where a login stands, and what the browser needs next (the interaction contract with /authorize).

The state lives in two rows only: the ``oidc_interactions`` row (what the app
asked; entity chosen, consent given, outcome) and the ``login_sessions`` row
named by the cookie (who, at which level, since when). :func:`next_step` is a
pure function of them (it only reads), so any worker can continue any login,
and a page that has nothing to write never takes the write lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session

from idp.audit.log import AuditEvent, subject_hash
from idp.context import Hoviyat
from idp.login.consent import has_consent
from idp.storage import interactions
from idp.storage.login import AuthenticatedPerson, LoginSession
from idp.storage.models import Client
from idp.storage.oidc import OidcInteraction
from policies import assurance
from policies.service_policy import ServicePolicy

Step = Literal["identify", "mobile", "otp", "high", "entity", "consent", "complete"]

COMPLETE_PATH = "/authorize/complete"


@dataclass
class Flow:
    """One interaction with its client and service policy, loaded for one request."""

    interaction: OidcInteraction
    client: Client
    policy: ServicePolicy | None

    @property
    def params(self) -> dict[str, Any]:
        return self.interaction.params or {}

    @property
    def prompt(self) -> list[str]:
        return list(self.params.get("prompt") or [])

    @property
    def scope(self) -> list[str]:
        return list(self.params.get("scope") or [])

    @property
    def ui_locales(self) -> list[str]:
        return list(self.params.get("ui_locales") or [])

    @property
    def required_acr(self) -> str:
        minimum = self.policy.min_acr if self.policy is not None else assurance.LOW
        return assurance.required_level(self.params.get("acr_values"), minimum)

    @property
    def wants_entity(self) -> bool:
        return "legal_entity" in self.scope

    @property
    def claims(self) -> list[str]:
        return [str(claim) for claim in self.interaction.requested_claims or []]

    @property
    def login_hint(self) -> str | None:
        hint = self.params.get("login_hint")
        return str(hint) if hint else None


def load_flow(
    db_session: Session, interaction_id: str, policies: Mapping[str, ServicePolicy]
) -> Flow | None:
    """The interaction if it is still waiting for the user, else None (unknown, expired, done)."""
    if not interaction_id or len(interaction_id) > 64:
        return None
    found = interactions.waiting(db_session, interaction_id, datetime.now(UTC))
    if found is None:
        return None
    interaction, client = found
    return Flow(interaction=interaction, client=client, policy=policies.get(client.service_code))


def needs_fresh_login(flow: Flow, session: LoginSession | None, now: datetime) -> bool:
    if session is None:
        return True
    auth_time = session.auth_time
    # prompt=login (OIDC Core §3.1.2.1): authenticated again within this interaction.
    if "login" in flow.prompt and auth_time < flow.interaction.created_at:
        return True
    max_age = flow.params.get("max_age")
    if max_age is not None and now - auth_time > timedelta(seconds=int(max_age)):
        return True
    hint = flow.login_hint
    return bool(hint and hint.isdigit() and len(hint) == 10 and hint != session.national_code)


def next_step(
    db_session: Session,
    flow: Flow,
    session: LoginSession | None,
    *,
    otp_pending: bool,
) -> Step:
    """The first step of the login still to do; ``complete`` when the interaction can be closed."""
    now = datetime.now(UTC)
    if session is None or needs_fresh_login(flow, session, now):
        return "identify"
    if not assurance.satisfies(session.acr, flow.required_acr):
        # High is reached from substantial only (eIDAS: an authenticator bound after
        # proofing at substantial): a session below it confirms the mobile first.
        if flow.required_acr == assurance.HIGH and assurance.satisfies(
            session.acr, assurance.SUBSTANTIAL
        ):
            return "high"
        return "otp" if otp_pending else "mobile"
    if flow.wants_entity and flow.interaction.entity_national_id is None:
        return "entity"
    if not flow.interaction.consent_granted:
        remembered = "consent" not in flow.prompt and has_consent(
            db_session, session.national_code, flow.client.client_id, flow.claims
        )
        if not remembered:
            return "consent"
    # Reads only: the caller closes the interaction (consent included) in one write.
    return "complete"


def finished(flow: Flow, session: LoginSession) -> AuthenticatedPerson:
    """Who logged in and how, for closing the interaction (:mod:`idp.oidc.completion`)."""
    return AuthenticatedPerson.of_session(session, flow.interaction.entity_national_id)


def reset_choices(db_session: Session, interaction_id: str) -> None:
    """A new login in this interaction: the entity and consent chosen for whoever came before go."""
    interactions.reset_choices(db_session, interaction_id)


def refuse(db_session: Session, flow: Flow, error: str = "access_denied") -> str:
    """The user cancelled or denied: /authorize answers the client with ``error``."""
    interaction = flow.interaction
    interaction.error = error
    interaction.completed_at = datetime.now(UTC)
    interactions.save(db_session, interaction)
    return f"{COMPLETE_PATH}?interaction={interaction.id}"


def person_event(
    hoviyat: Hoviyat,
    *,
    tracking_code: str,
    event_type: str,
    operation: str,
    outcome: str,
    national_code: str | None,
    flow: Flow | None = None,
    **detail: Any,
) -> AuditEvent:
    """The audit entry of something a person did.

    Insert it with :func:`idp.audit.log.append` in the transaction of the
    action it records, or collect several and insert them at once.
    """
    if flow is not None:
        detail = {"client_id": flow.client.client_id, "interaction": flow.interaction.id, **detail}
    return AuditEvent(
        tracking_code=tracking_code,
        event_type=event_type,
        actor_type="person",
        outcome=outcome,
        service_code=flow.client.service_code if flow is not None else None,
        legal_basis=flow.policy.legal_basis if flow and flow.policy else None,
        operation=operation,
        subject_hash=(
            subject_hash(hoviyat.secrets.subject_pepper, national_code) if national_code else None
        ),
        detail=detail,
    )
