"""Login interactions as the login pages and ``/authorize/complete`` use them.

``oidc_interactions`` is the contract between ``/authorize`` and the login
pages (:mod:`idp.storage.oidc`). The hot statements are Core statements built
once and hand back detached model objects (:mod:`idp.storage.rows`); a step
that changes the interaction saves it through :func:`save`, which UPDATEs the
changed columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlmodel import Session

from idp.storage.models import Client
from idp.storage.oidc import OidcInteraction
from idp.storage.rows import detached

INTERACTIONS = OidcInteraction.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]

# Every login page loads its interaction and client: one Core query for both
# (two ORM lookups cost several times the queries). The client's columns are
# labelled, since both tables have client_id and created_at.
_CLIENT_LABELS = {column.name: f"client_{column.name}" for column in CLIENTS.c}
_WITH_CLIENT = (
    select(INTERACTIONS, *(column.label(_CLIENT_LABELS[column.name]) for column in CLIENTS.c))
    .join_from(INTERACTIONS, CLIENTS, CLIENTS.c.client_id == INTERACTIONS.c.client_id)
    .where(INTERACTIONS.c.id == bindparam("interaction_id"))
)
_BY_ID = select(INTERACTIONS).where(INTERACTIONS.c.id == bindparam("interaction_id"))

# Built once (the statement is run by the shared writer on every login).
_CLOSE_AND_CONSUME = (
    update(INTERACTIONS)
    .where(INTERACTIONS.c.id == bindparam("interaction_id"))
    .where(INTERACTIONS.c.completed_at.is_(None))
    .where(INTERACTIONS.c.consumed_at.is_(None))
    .where(INTERACTIONS.c.error.is_(None))
    .where(INTERACTIONS.c.expires_at > bindparam("now"))
    .values(
        session_id=bindparam("session_id"),
        acr=bindparam("acr"),
        amr=bindparam("amr", type_=INTERACTIONS.c.amr.type),
        auth_time=bindparam("auth_time", type_=INTERACTIONS.c.auth_time.type),
        entity_national_id=bindparam("entity_national_id"),
        consent_granted=True,
        completed_at=bindparam("now", type_=INTERACTIONS.c.completed_at.type),
        consumed_at=bindparam("now", type_=INTERACTIONS.c.consumed_at.type),
    )
)


def waiting(
    db: Session, interaction_id: str, now: datetime
) -> tuple[OidcInteraction, Client] | None:
    """The interaction and its client while it waits for the user; None when it is unknown,
    done, expired, or its client was deleted or disabled."""
    row = db.connection().execute(_WITH_CLIENT, {"interaction_id": interaction_id}).mappings()
    found = row.first()
    if found is None or found["completed_at"] is not None or found["consumed_at"] is not None:
        return None
    if found["expires_at"] <= now or found[_CLIENT_LABELS["disabled"]]:
        return None
    interaction = detached(OidcInteraction, {c.name: found[c.name] for c in INTERACTIONS.c})
    client = detached(Client, {name: found[label] for name, label in _CLIENT_LABELS.items()})
    return interaction, client


def by_id(db: Session, interaction_id: str) -> OidcInteraction | None:
    """The interaction, whatever its state."""
    found = db.connection().execute(_BY_ID, {"interaction_id": interaction_id}).mappings().first()
    if found is None:
        return None
    return detached(OidcInteraction, {c.name: found[c.name] for c in INTERACTIONS.c})


def save(db: Session, interaction: OidcInteraction) -> None:
    """Write what a step changed on an interaction read by this module."""
    db.add(interaction)


def reset_choices(db: Session, interaction_id: str) -> None:
    """The entity and consent chosen in a still open interaction go."""
    db.execute(
        update(INTERACTIONS)
        .where(INTERACTIONS.c.id == interaction_id)
        .where(INTERACTIONS.c.completed_at.is_(None))
        .values(entity_national_id=None, consent_granted=False)
    )


def consume(db: Session, interaction_id: str, now: datetime) -> bool:
    """Mark a finished interaction used, once across all workers; True if this call did."""
    result = db.execute(
        update(INTERACTIONS)
        .where(INTERACTIONS.c.id == interaction_id)
        .where(INTERACTIONS.c.consumed_at.is_(None))
        .where(INTERACTIONS.c.expires_at > now)
        .where(or_(INTERACTIONS.c.completed_at.is_not(None), INTERACTIONS.c.error.is_not(None)))
        .values(consumed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def close_and_consume(db: Session, interaction_id: str, now: datetime, **login: Any) -> bool:
    """Record who logged in (``session_id``, ``acr``, ``amr``, ``auth_time``,
    ``entity_national_id``) and consume the interaction in one UPDATE; True if
    this call did, False when another request closed it first or it expired."""
    values = {"interaction_id": interaction_id, "now": now, **login}
    return bool(db.execute(_CLOSE_AND_CONSUME, values).rowcount)  # type: ignore[attr-defined]
