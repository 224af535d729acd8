"""DPoP proofs already accepted (RFC 9449 §11.1): the table ``oauth_dpop_proofs``.

A proof's ``jti`` is kept, with its key's thumbprint, for as long as its
``iat`` would still be accepted; after that the proof is refused as stale
anyway and the row is dropped. Single use is the database's: one INSERT on
the primary key, so of two workers or hosts presenting the same proof exactly
one succeeds, on SQLite and PostgreSQL alike (as ``oidc_client_assertions``
does for private_key_jwt).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import bindparam, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime


class OauthDpopProof(SQLModel, table=True):
    """One accepted proof: SHA-256 of ``jkt`` and ``jti`` (a client's jti may be long)."""

    __tablename__ = "oauth_dpop_proofs"

    proof_hash: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


PROOFS = OauthDpopProof.__table__  # type: ignore[attr-defined]
_INSERT = insert(PROOFS)
_PRUNE = delete(PROOFS).where(
    PROOFS.c.expires_at < bindparam("now", type_=PROOFS.c.expires_at.type)
)


def proof_hash(jkt: str, jti: str) -> str:
    return hashlib.sha256(f"{jkt}\n{jti}".encode()).hexdigest()


def spend(session: Session, jkt: str, jti: str, expires_at: datetime, now: datetime) -> bool:
    """Record the proof; False when it was recorded before. Expired rows are dropped first."""
    session.execute(_PRUNE, {"now": now})
    try:
        with session.begin_nested():
            session.execute(_INSERT, {"proof_hash": proof_hash(jkt, jti), "expires_at": expires_at})
    except IntegrityError:
        return False
    return True
