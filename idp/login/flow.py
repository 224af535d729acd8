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

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from idp.audit.log import AuditEvent, subject_hash
from idp.context import Hoviyat
from idp.login.consent import has_consent
from idp.login.rows import detached
from idp.oidc.completion import FinishedLogin
from idp.storage.login import LoginSession
from idp.storage.models import Client
from idp.storage.oidc import OidcInteraction
from policies import assurance
from policies.service_policy import ServicePolicy

Step = Literal["identify", "mobile", "otp", "entity", "consent", "unavailable", "complete"]

COMPLETE_PATH = "/authorize/complete"
INTERACTIONS = OidcInteraction.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]

# Every login page loads its interaction and client: one Core query for both
# (two ORM lookups cost several times the queries). The client's columns are
# labelled, since both tables have client_id and created_at.
_CLIENT_LABELS = {column.name: f"client_{column.name}" for column in CLIENTS.c}
_LOAD_FLOW = (
    select(INTERACTIONS, *(column.label(_CLIENT_LABELS[column.name]) for column in CLIENTS.c))
    .join_from(INTERACTIONS, CLIENTS, CLIENTS.c.client_id == INTERACTIONS.c.client_id)
    .where(INTERACTIONS.c.id == bindparam("interaction_id"))
)


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
    row = (
        db_session.connection()
        .execute(_LOAD_FLOW, {"interaction_id": interaction_id})
        .mappings()
        .first()
    )
    # No row: no such interaction, or its client was deleted.
    if row is None or row["completed_at"] is not None or row["consumed_at"] is not None:
        return None
    if row["expires_at"] <= datetime.now(UTC):
        return None
    if row[_CLIENT_LABELS["disabled"]]:
        return None
    # Detached objects: a step that changes the interaction adds it to its
    # write session, which then UPDATEs the changed columns.
    interaction = detached(OidcInteraction, {c.name: row[c.name] for c in INTERACTIONS.c})
    client = detached(Client, {name: row[label] for name, label in _CLIENT_LABELS.items()})
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
        if flow.required_acr == assurance.HIGH:
            return "unavailable"
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


def finished(flow: Flow, session: LoginSession) -> FinishedLogin:
    """Who logged in and how, for closing the interaction (:mod:`idp.oidc.completion`)."""
    return FinishedLogin(
        session_id=session.id,
        acr=session.acr,
        amr=list(session.amr),
        auth_time=session.auth_time,
        entity_national_id=flow.interaction.entity_national_id,
    )


def reset_choices(db_session: Session, interaction_id: str) -> None:
    """A new login in this interaction: the entity and consent chosen for whoever came before go."""
    db_session.execute(
        update(INTERACTIONS)
        .where(INTERACTIONS.c.id == interaction_id)
        .where(INTERACTIONS.c.completed_at.is_(None))
        .values(entity_national_id=None, consent_granted=False)
    )


def refuse(db_session: Session, flow: Flow, error: str = "access_denied") -> str:
    """The user cancelled or denied: /authorize answers the client with ``error``."""
    interaction = flow.interaction
    interaction.error = error
    interaction.completed_at = datetime.now(UTC)
    db_session.add(interaction)
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
