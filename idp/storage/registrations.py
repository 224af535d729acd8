"""Dynamic client registration (RFC 7591, RFC 7592): the tables ``dcr_initial_tokens``
and ``dcr_clients``.

An initial access token is stored only as its keyed digest. It registers one
client: :func:`consume` is one conditional UPDATE (``used_at IS NULL`` and not
expired), so of two registrations racing with one token, on any workers or
hosts, exactly one gets it; :func:`revoke_initial_token` is the same kind of
UPDATE, so a registration racing a revocation either spends the token first or
finds it revoked. ``dcr_clients`` ties each registered client to the
legal entity (its national identifier) and holds the digest of its
registration access token; :func:`rotate` replaces that digest only if it is
still the one presented, so a token is spent once across processes too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime


class InitialAccessToken(SQLModel, table=True):
    __tablename__ = "dcr_initial_tokens"

    token_digest: str = Field(primary_key=True, max_length=64)
    national_id: str = Field(index=True, max_length=11)
    service_code: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    client_id: str | None = Field(default=None, max_length=64)
    # Set when an administrator revokes an unused token (migration 0810).
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class RegisteredClient(SQLModel, table=True):
    __tablename__ = "dcr_clients"

    client_id: str = Field(primary_key=True, foreign_key="clients.client_id", max_length=64)
    national_id: str = Field(index=True, max_length=11)
    # None once the registration is deleted (RFC 7592 §2.3): no token opens it again.
    registration_token_digest: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


# A token's public id: the first 16 hex digits of its keyed digest (64 bits: unique
# in practice, and no help to anyone without the server's key).
TOKEN_ID_LENGTH = 16
TOKENS = InitialAccessToken.__table__  # type: ignore[attr-defined]
REGISTERED = RegisteredClient.__table__  # type: ignore[attr-defined]


def add_initial_token(session: Session, token: InitialAccessToken) -> None:
    session.add(token)
    session.flush()


def consume(session: Session, token_digest: str, now: datetime) -> InitialAccessToken | None:
    """Spend the token if it is unused, unrevoked and unexpired: its row, or None."""
    result = session.execute(
        update(TOKENS)
        .where(
            TOKENS.c.token_digest == token_digest,
            TOKENS.c.used_at.is_(None),
            TOKENS.c.revoked_at.is_(None),
            TOKENS.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(InitialAccessToken, token_digest)


def list_initial_tokens(session: Session) -> list[InitialAccessToken]:
    return list(session.scalars(select(InitialAccessToken).order_by(TOKENS.c.created_at)))


def find_initial_token(session: Session, token_id: str) -> InitialAccessToken | None:
    """The token whose digest begins with ``token_id`` (its public id: 16 hex digits)."""
    if len(token_id) != TOKEN_ID_LENGTH or not all(c in "0123456789abcdef" for c in token_id):
        return None
    rows = list(
        session.scalars(
            select(InitialAccessToken).where(TOKENS.c.token_digest.startswith(token_id))
        )
    )
    return rows[0] if len(rows) == 1 else None


def revoke_initial_token(session: Session, token_digest: str, now: datetime) -> bool:
    """Revoke the token if it is still unused and unrevoked; False otherwise (one UPDATE,
    so a registration racing with the revocation either spends it first or finds it revoked)."""
    result = session.execute(
        update(TOKENS)
        .where(
            TOKENS.c.token_digest == token_digest,
            TOKENS.c.used_at.is_(None),
            TOKENS.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_client(session: Session, token: InitialAccessToken, client_id: str) -> None:
    token.client_id = client_id
    session.add(token)
    session.flush()


def add_registered(session: Session, row: RegisteredClient) -> None:
    session.add(row)
    session.flush()


def get_registered(session: Session, client_id: str) -> RegisteredClient | None:
    return session.get(RegisteredClient, client_id)


def rotate(
    session: Session, client_id: str, old_digest: str, new_digest: str | None, now: datetime
) -> bool:
    """Replace the registration token's digest if it is still ``old_digest``; False otherwise."""
    result = session.execute(
        update(REGISTERED)
        .where(
            REGISTERED.c.client_id == client_id,
            REGISTERED.c.registration_token_digest == old_digest,
        )
        .values(registration_token_digest=new_digest, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
