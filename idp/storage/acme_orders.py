"""ACME orders, authorizations and challenges (RFC 8555 §7.1.3, §7.1.4, §8).

Every state change that must happen once is one conditional UPDATE
(``... WHERE status = <expected>``), so of two workers or hosts racing on the
same challenge or finalize exactly one moves it on, on SQLite and PostgreSQL
alike. Work that can die half-way (a validation, an issuance) records a
``processing_until`` deadline: past it, the row is taken back (a challenge may
be tried again; an order is settled from what the certificates table says).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, and_, exists, func, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from idp.storage.certificates import CertificateRecord
from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class AcmeOrder(SQLModel, table=True):
    """An order: ``pending`` → ``ready`` → ``processing`` → ``valid``, or ``invalid`` (§7.1.6)."""

    __tablename__ = "acme_orders"
    __table_args__ = (
        Index("ix_acme_orders_account_ca", "account_id", "ca", "created_at"),
        # RFC 9773 §5: a certificate is replaced by one order that is not invalid;
        # the certID stored is canonical, so one spelling per certificate.
        Index(
            "uq_acme_orders_replaces",
            "replaces",
            unique=True,
            sqlite_where=text("status <> 'invalid'"),
            postgresql_where=text("status <> 'invalid'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(max_length=64)
    ca: str = Field(max_length=40)
    status: str = Field(max_length=12)
    names: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    profile: str = Field(max_length=60)
    replaces: str | None = Field(default=None, max_length=300)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    # Finalize: the issuance's tracking code (its certificate row carries it too)
    # and the deadline after which a worker that died mid-issuance is given up on.
    tracking_code: str | None = Field(default=None, max_length=40)
    processing_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    certificate_serial: str | None = Field(default=None, max_length=40, index=True)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AcmeAuthorization(SQLModel, table=True):
    """One account's authorization for one name (§7.1.4); a valid one is reused by
    the same account's later orders until it expires."""

    __tablename__ = "acme_authorizations"
    __table_args__ = (
        Index("ix_acme_authorizations_reuse", "account_id", "ca", "identifier", "status"),
    )

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(max_length=64)
    ca: str = Field(max_length=40)
    identifier: str = Field(max_length=255)  # the name without "*." for a wildcard
    wildcard: bool = Field(default=False)
    status: str = Field(max_length=12)  # pending | valid | invalid | deactivated
    expires_at: datetime = Field(sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AcmeOrderAuthorization(SQLModel, table=True):
    """Which authorizations an order needs, in the order of its identifiers."""

    __tablename__ = "acme_order_authorizations"

    order_id: str = Field(primary_key=True, max_length=40)
    authz_id: str = Field(primary_key=True, max_length=40, index=True)
    position: int = Field(default=0)


class AcmeChallenge(SQLModel, table=True):
    """``pending`` → ``processing`` → ``valid`` | ``invalid`` (§7.1.6). ``attempt``
    names the claim that runs the validation: only that claim records its result."""

    __tablename__ = "acme_challenges"

    id: str = Field(primary_key=True, max_length=40)
    authz_id: str = Field(max_length=40, index=True)
    type: str = Field(max_length=16)
    token: str = Field(max_length=64)
    status: str = Field(max_length=12)
    attempt: int = Field(default=0)
    processing_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    validated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


_orders = AcmeOrder.__table__  # type: ignore[attr-defined]
_authzs = AcmeAuthorization.__table__  # type: ignore[attr-defined]
_challenges = AcmeChallenge.__table__  # type: ignore[attr-defined]


def _changed(session: Session, statement: Any) -> bool:
    return bool(session.execute(statement).rowcount == 1)  # type: ignore[attr-defined]


# --- creating ------------------------------------------------------------------------


def reusable_authorization(
    session: Session, account_id: str, ca: str, identifier: str, wildcard: bool, until: datetime
) -> AcmeAuthorization | None:
    """A valid authorization of this account for this name that lasts until ``until``."""
    return session.exec(
        select(AcmeAuthorization)
        .where(
            AcmeAuthorization.account_id == account_id,
            AcmeAuthorization.ca == ca,
            AcmeAuthorization.identifier == identifier,
            AcmeAuthorization.wildcard == wildcard,
            AcmeAuthorization.status == "valid",
            AcmeAuthorization.expires_at > until,
        )
        .order_by(col(AcmeAuthorization.expires_at).desc())
    ).first()


def add_order(
    session: Session,
    order: AcmeOrder,
    authorizations: Sequence[AcmeAuthorization],
    new_rows: Sequence[AcmeAuthorization | AcmeChallenge],
) -> bool:
    """The order, its new authorizations and challenges, and its links to every
    authorization (new or reused), in the caller's transaction. False (nothing
    written) when the certificate the order ``replaces`` is already being replaced."""
    try:
        with session.begin_nested():
            session.add(order)
            session.add_all(new_rows)
            session.add_all(
                AcmeOrderAuthorization(order_id=order.id, authz_id=authz.id, position=position)
                for position, authz in enumerate(authorizations)
            )
    except IntegrityError:
        return False
    return True


# --- reading -------------------------------------------------------------------------


def get_order(session: Session, order_id: str) -> AcmeOrder | None:
    return session.get(AcmeOrder, order_id)


def get_authorization(session: Session, authz_id: str) -> AcmeAuthorization | None:
    return session.get(AcmeAuthorization, authz_id)


def get_challenge(session: Session, challenge_id: str) -> AcmeChallenge | None:
    return session.get(AcmeChallenge, challenge_id)


def order_authorizations(session: Session, order_id: str) -> list[AcmeAuthorization]:
    return list(
        session.exec(
            select(AcmeAuthorization)
            .join(
                AcmeOrderAuthorization,
                col(AcmeOrderAuthorization.authz_id) == col(AcmeAuthorization.id),
            )
            .where(AcmeOrderAuthorization.order_id == order_id)
            .order_by(col(AcmeOrderAuthorization.position))
        )
    )


def authorization_challenges(session: Session, authz_id: str) -> list[AcmeChallenge]:
    return list(
        session.exec(
            select(AcmeChallenge)
            .where(AcmeChallenge.authz_id == authz_id)
            .order_by(col(AcmeChallenge.type))
        )
    )


def pending_authorization_count(session: Session, account_id: str, now: datetime) -> int:
    """The account's authorizations still waiting for a validation."""
    return int(
        session.exec(
            select(func.count())
            .select_from(AcmeAuthorization)
            .where(
                AcmeAuthorization.account_id == account_id,
                AcmeAuthorization.status == "pending",
                AcmeAuthorization.expires_at > now,
            )
        ).one()
    )


def account_order_ids(session: Session, account_id: str, ca: str, limit: int) -> list[str]:
    """The account's orders at this CA that are not invalid, newest first (§7.1.2.1)."""
    return list(
        session.exec(
            select(AcmeOrder.id)
            .where(
                AcmeOrder.account_id == account_id,
                AcmeOrder.ca == ca,
                AcmeOrder.status != "invalid",
            )
            .order_by(col(AcmeOrder.created_at).desc())
            .limit(limit)
        )
    )


def order_of_certificate(session: Session, ca: str, serial_hex: str) -> AcmeOrder | None:
    """The order at this CA that issued the certificate, if it came through ACME here."""
    return session.exec(
        select(AcmeOrder).where(AcmeOrder.ca == ca, AcmeOrder.certificate_serial == serial_hex)
    ).first()


def issued_serial(session: Session, tracking_code: str) -> str | None:
    """The serial of the certificate issued under ``tracking_code``, if it was."""
    return session.exec(
        select(CertificateRecord.serial_hex).where(
            CertificateRecord.tracking_code == tracking_code,
            col(CertificateRecord.status).in_(("issued", "revoked")),
        )
    ).first()


# --- moving state on, once -----------------------------------------------------------


def move_order(
    session: Session, order_id: str, from_status: Sequence[str], /, **values: Any
) -> bool:
    """Set ``values`` on the order if it is still in one of ``from_status``."""
    where = and_(_orders.c.id == order_id, _orders.c.status.in_(list(from_status)))
    return _changed(session, update(_orders).where(where).values(**values))


def claim_finalize(
    session: Session, order_id: str, tracking_code: str, now: datetime, until: datetime
) -> bool:
    """``ready`` → ``processing`` for exactly one caller, if the order has not expired."""
    where = and_(_orders.c.id == order_id, _orders.c.status == "ready", _orders.c.expires_at > now)
    values = {"status": "processing", "tracking_code": tracking_code, "processing_until": until}
    return _changed(session, update(_orders).where(where).values(**values))


def finish_processing(
    session: Session, order_id: str, tracking_code: str, /, **values: Any
) -> bool:
    """End the issuance run under ``tracking_code`` (and no other) with ``values``."""
    where = and_(
        _orders.c.id == order_id,
        _orders.c.status == "processing",
        _orders.c.tracking_code == tracking_code,
    )
    return _changed(session, update(_orders).where(where).values(**values))


def claim_challenge(session: Session, challenge_id: str, now: datetime, until: datetime) -> int:
    """``pending`` (or ``processing`` past its deadline: its worker died) → ``processing``,
    if its authorization is pending and unexpired. The claim's attempt number, or 0."""
    # Correlated on the challenge's own authorization: a primary-key lookup, not a
    # scan of every pending authorization.
    live_authz = exists().where(
        _authzs.c.id == _challenges.c.authz_id,
        _authzs.c.status == "pending",
        _authzs.c.expires_at > now,
    )
    where = and_(
        _challenges.c.id == challenge_id,
        or_(
            _challenges.c.status == "pending",
            and_(_challenges.c.status == "processing", _challenges.c.processing_until < now),
        ),
        live_authz,
    )
    statement = (
        update(_challenges)
        .where(where)
        .values(status="processing", processing_until=until, attempt=_challenges.c.attempt + 1)
        .returning(_challenges.c.attempt)
    )
    attempt = session.execute(statement).scalar()
    return int(attempt or 0)


def claimed(challenge: AcmeChallenge, attempt: int, until: datetime) -> AcmeChallenge:
    """``challenge`` as :func:`claim_challenge` left it when it returned ``attempt``."""
    return AcmeChallenge(
        id=challenge.id,
        authz_id=challenge.authz_id,
        type=challenge.type,
        token=challenge.token,
        status="processing",
        attempt=attempt,
        processing_until=until,
        validated_at=challenge.validated_at,
        error=challenge.error,
    )


def record_validation(
    session: Session,
    challenge: AcmeChallenge,
    attempt: int,
    error: dict[str, Any] | None,
    now: datetime,
    authz_expires_at: datetime,
) -> bool:
    """The result of claim ``attempt``: the challenge, then its authorization (valid
    until ``authz_expires_at``, or invalid). False if the claim was taken over."""
    owned = and_(
        _challenges.c.id == challenge.id,
        _challenges.c.status == "processing",
        _challenges.c.attempt == attempt,
    )
    status = "invalid" if error else "valid"
    done = update(_challenges).where(owned).values(status=status, validated_at=now, error=error)
    if not _changed(session, done):
        return False
    authz_values: dict[str, Any] = {"status": status}
    if error is None:
        authz_values["expires_at"] = authz_expires_at
    pending = and_(_authzs.c.id == challenge.authz_id, _authzs.c.status == "pending")
    session.execute(update(_authzs).where(pending).values(**authz_values))
    return True


def deactivate_authorization(session: Session, authz_id: str) -> bool:
    """§7.5.2: a pending or valid authorization becomes ``deactivated``, for good."""
    where = and_(_authzs.c.id == authz_id, _authzs.c.status.in_(["pending", "valid"]))
    return _changed(session, update(_authzs).where(where).values(status="deactivated"))
