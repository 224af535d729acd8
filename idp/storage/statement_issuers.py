"""Software statement issuers an administrator trusts, and the statements spent (RFC 7591 §2.3).

``dcr_statement_issuers`` binds an issuer (the ``iss`` of its statements) to
the public keys it signs with, one legal entity (its national identifier) and
one service policy: a client registered with its statement is tied to those,
never to anything the statement or the request says.

``dcr_statement_jtis`` holds the statements already used, by a digest of
issuer and ``jti``: :func:`spend` is one ``INSERT ... ON CONFLICT DO NOTHING
RETURNING``, so of two workers or hosts presented one statement exactly one
registers a client (the same statement as :mod:`idp.storage.acme_nonces`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime


class StatementIssuer(SQLModel, table=True):
    __tablename__ = "dcr_statement_issuers"

    issuer: str = Field(primary_key=True, max_length=255)
    jwks: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    national_id: str = Field(index=True, max_length=11)
    service_code: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(max_length=128)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class SpentStatement(SQLModel, table=True):
    __tablename__ = "dcr_statement_jtis"

    # sha256(issuer, NUL, jti) in hex: a jti of any length, one key per issuer.
    statement_id: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


ISSUERS = StatementIssuer.__table__  # type: ignore[attr-defined]
SPENT = SpentStatement.__table__  # type: ignore[attr-defined]
_INSERTS = {
    "postgresql": postgresql.insert(SPENT).on_conflict_do_nothing().returning(SPENT.c.statement_id),
    "sqlite": sqlite.insert(SPENT).on_conflict_do_nothing().returning(SPENT.c.statement_id),
}
_PRUNE = delete(SPENT).where(SPENT.c.expires_at < bindparam("now", type_=SPENT.c.expires_at.type))


def add(session: Session, row: StatementIssuer) -> None:
    session.add(row)
    session.flush()


def get(session: Session, issuer: str) -> StatementIssuer | None:
    return session.get(StatementIssuer, issuer)


def list_all(session: Session) -> list[StatementIssuer]:
    return list(session.scalars(select(StatementIssuer).order_by(ISSUERS.c.created_at)))


def revoke(session: Session, issuer: str, now: datetime) -> bool:
    """Stop trusting ``issuer``; False when it was not trusted (unknown or revoked already)."""
    result = session.execute(
        update(ISSUERS)
        .where(ISSUERS.c.issuer == issuer, ISSUERS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def spend(session: Session, statement_id: str, expires_at: datetime) -> bool:
    """Record the statement as used; False when it was used before."""
    statement = _INSERTS[session.get_bind().dialect.name]
    # RETURNING, not the row count: psycopg reports none for this INSERT.
    result = session.connection().execute(
        statement, {"statement_id": statement_id, "expires_at": expires_at}
    )
    return result.first() is not None


def prune(session: Session, now: datetime) -> int:
    """Drop spent statements past their expiry (they are refused as expired anyway)."""
    return int(session.execute(_PRUNE, {"now": now}).rowcount or 0)  # type: ignore[attr-defined]
