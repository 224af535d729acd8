"""Back-channel logout deliveries waiting to be POSTed: ``oidc_logout_deliveries``.

A delivery is written in the logout's own transaction, so an ended session
always has its notices queued. Any worker or host may deliver one: a delivery
is claimed by a conditional UPDATE that sets a lease (``claimed_until``), so
of two claimants exactly one sends it, and a deliverer that dies leaves the
lease to run out for another to take over.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Text, func, or_, select, update
from sqlmodel import Column, Field, Session, SQLModel, col

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class OidcLogoutDelivery(SQLModel, table=True):
    """One logout token for one client's ``backchannel_logout_uri``."""

    __tablename__ = "oidc_logout_deliveries"

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    uri: str = Field(max_length=2000)
    logout_token: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UtcDateTime, index=True)
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def _open() -> list[ColumnElement[bool]]:
    return [
        col(OidcLogoutDelivery.delivered_at).is_(None),
        col(OidcLogoutDelivery.failed_at).is_(None),
    ]


def pending(session: Session, client_id: str) -> int:
    """Deliveries of ``client_id`` not yet delivered nor given up."""
    query = (
        select(func.count())
        .select_from(OidcLogoutDelivery)
        .where(col(OidcLogoutDelivery.client_id) == client_id, *_open())
    )
    return int(session.execute(query).scalar_one())


def enqueue(session: Session, delivery: OidcLogoutDelivery) -> None:
    session.add(delivery)


def claim_due(session: Session, now: datetime, lease_until: datetime, limit: int) -> list[str]:
    """Ids of up to ``limit`` due deliveries this caller now holds the lease of."""
    due = session.execute(
        select(col(OidcLogoutDelivery.id))
        .where(
            *_open(),
            col(OidcLogoutDelivery.next_attempt_at) <= now,
            or_(
                col(OidcLogoutDelivery.claimed_until).is_(None),
                col(OidcLogoutDelivery.claimed_until) < now,
            ),
        )
        .order_by(col(OidcLogoutDelivery.next_attempt_at))
        .limit(limit)
    ).scalars()
    claimed: list[str] = []
    for delivery_id in list(due):
        # Conditional on the lease still being free: of two claimants one wins.
        won = session.execute(
            update(OidcLogoutDelivery)
            .where(
                col(OidcLogoutDelivery.id) == delivery_id,
                or_(
                    col(OidcLogoutDelivery.claimed_until).is_(None),
                    col(OidcLogoutDelivery.claimed_until) < now,
                ),
            )
            .values(claimed_until=lease_until)
        )
        if won.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    return claimed


def get(session: Session, delivery_id: str) -> OidcLogoutDelivery | None:
    return session.get(OidcLogoutDelivery, delivery_id)


def settle(
    session: Session,
    delivery_id: str,
    *,
    delivered_at: datetime | None = None,
    failed_at: datetime | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record one attempt: delivered, given up, or to retry at ``retry_at``; frees the lease."""
    values: dict[str, object] = {
        "attempts": col(OidcLogoutDelivery.attempts) + 1,
        "claimed_until": None,
    }
    if delivered_at is not None:
        values["delivered_at"] = delivered_at
    if failed_at is not None:
        values["failed_at"] = failed_at
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    session.execute(
        update(OidcLogoutDelivery).where(col(OidcLogoutDelivery.id) == delivery_id).values(**values)
    )
