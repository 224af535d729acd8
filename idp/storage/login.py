"""Login tables: browser sessions, one-time codes, remembered consents, the development outbox.

Nothing about a login lives in process memory: a second worker (or a restart)
sees the same sessions, codes and consents. The cookie carries a random token;
only its SHA-256 digest is stored, so a copy of the database opens no session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class LoginSession(SQLModel, table=True):
    """A person logged in through the browser, at one level of assurance.

    ``id`` is the public handle other parts keep (interactions, grants, logout);
    ``token_digest`` is SHA-256 of the cookie value and changes whenever the
    level rises, so a token seen before a step-up is worth nothing after it.
    """

    __tablename__ = "login_sessions"
    __table_args__ = (UniqueConstraint("token_digest", name="uq_login_sessions_token_digest"),)

    id: str = Field(primary_key=True, max_length=40)
    token_digest: str = Field(max_length=64)
    national_code: str = Field(max_length=10, index=True)
    acr: str = Field(max_length=80)
    amr: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    auth_time: datetime = Field(sa_type=UtcDateTime)
    mobile: str | None = Field(default=None, max_length=20)
    entity_national_id: str | None = Field(default=None, max_length=11)
    tracking_code: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LoginOtp(SQLModel, table=True):
    """A one-time code sent to a mobile number to raise a session to level substantial.

    Only an HMAC of the code is stored. ``attempts`` is raised by a conditional
    UPDATE before each comparison and ``consumed_at`` is set the same way, so
    two workers can neither exceed the attempt limit nor both accept one code.
    """

    __tablename__ = "login_otps"
    __table_args__ = (Index("ix_login_otps_session_interaction", "session_id", "interaction_id"),)

    id: str = Field(primary_key=True, max_length=40)
    session_id: str = Field(max_length=40)
    interaction_id: str = Field(max_length=64)
    national_code: str = Field(max_length=10)
    mobile: str = Field(max_length=20)
    code_digest: str = Field(max_length=64)
    attempts: int = Field(default=0)
    max_attempts: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    consumed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Consent(SQLModel, table=True):
    """A person's remembered consent: this client may receive these claims."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("national_code", "client_id", "claims_key", name="uq_consents_claim_set"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    national_code: str = Field(max_length=10, index=True)
    client_id: str = Field(max_length=64)
    claims_key: str = Field(max_length=1000)
    claims: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class LoginCounter(SQLModel, table=True):
    """Uses per bucket (national code, mobile number) per window, for the login's hard limits.

    Kept apart from the API's ``rate_counters``, whose short windows are pruned
    every minute: these windows last an hour.
    """

    __tablename__ = "login_counters"

    bucket: str = Field(primary_key=True, max_length=100)
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    count: int = Field(default=0)


class OutboxMessage(SQLModel, table=True):
    """A text message the development sender kept instead of sending (never in production)."""

    __tablename__ = "dev_outbox"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    mobile: str = Field(max_length=20)
    body: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


@dataclass(frozen=True)
class AuthenticatedPerson:
    """Who logged in, how and since when: what the login pages, ``prompt=none``,
    the closing of an interaction and the grant all hand each other.

    ``session_id`` is None only for a login whose session is unknown to the
    caller; ``tracking_code`` and ``expires_at`` come with a live session.
    """

    session_id: str | None
    national_code: str
    acr: str
    amr: list[str]
    auth_time: datetime
    entity_national_id: str | None
    mobile: str | None = None
    tracking_code: str | None = None
    expires_at: datetime | None = field(default=None, compare=False)

    @classmethod
    def of_session(cls, row: LoginSession, entity_national_id: str | None) -> AuthenticatedPerson:
        """The person of a session row, acting for ``entity_national_id`` (the session's
        own choice, or the one made in the interaction being closed)."""
        return cls(
            session_id=row.id,
            national_code=row.national_code,
            acr=row.acr,
            amr=list(row.amr),
            auth_time=row.auth_time,
            entity_national_id=entity_national_id,
            mobile=row.mobile,
            tracking_code=row.tracking_code,
            expires_at=row.expires_at,
        )
