"""ACME nonces already spent (RFC 8555 §6.5): the table ``acme_spent_nonces``.

Issuing a nonce writes nothing (it carries its own expiry under a MAC, see
:mod:`idp.acme.nonces`); spending one is an INSERT on the primary key, so of
two workers or hosts presented the same nonce exactly one succeeds, on SQLite
and PostgreSQL alike. A row is kept until the nonce would have expired anyway.

The INSERT says ``ON CONFLICT DO NOTHING ... RETURNING``, whose row tells
whether it inserted: one statement, where catching the unique violation needed a
SAVEPOINT around it (three statements on every ACME request). A concurrent
insert of the same key still waits for the other transaction and then does
nothing, so exactly one spender sees a row inserted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime


class AcmeSpentNonce(SQLModel, table=True):
    """One nonce a request has used: its random part (base64url) and when it expires."""

    __tablename__ = "acme_spent_nonces"

    nonce_id: str = Field(primary_key=True, max_length=32)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


NONCES = AcmeSpentNonce.__table__  # type: ignore[attr-defined]
_INSERTS = {
    "postgresql": postgresql.insert(NONCES).on_conflict_do_nothing().returning(NONCES.c.nonce_id),
    "sqlite": sqlite.insert(NONCES).on_conflict_do_nothing().returning(NONCES.c.nonce_id),
}
_PRUNE = delete(NONCES).where(
    NONCES.c.expires_at < bindparam("now", type_=NONCES.c.expires_at.type)
)


def spend(session: Session, nonce_id: str, expires_at: datetime) -> bool:
    """Record the nonce; False when it was spent before."""
    statement = _INSERTS[session.get_bind().dialect.name]
    # RETURNING, not the row count: psycopg reports none for this INSERT.
    result = session.connection().execute(
        statement, {"nonce_id": nonce_id, "expires_at": expires_at}
    )
    return result.first() is not None


def prune(session: Session, now: datetime) -> int:
    """Drop the rows of nonces that have expired (they are refused by their MAC'd expiry)."""
    return int(session.execute(_PRUNE, {"now": now}).rowcount or 0)  # type: ignore[attr-defined]
