"""Passkeys (WebAuthn credentials) and their ceremonies' challenges: the tables
``passkeys`` and ``passkey_challenges``.

A passkey belongs to a person named by ``person_hash``, the keyed digest the
audit log uses for subjects (:func:`idp.audit.log.subject_hash`): a long-lived
table of credentials never holds a clear national code. The credential id is
the primary key, so one authenticator's credential is bound to one person
only, whoever registers it second is refused.

A challenge is spent once across workers and hosts: :func:`spend` is one
``DELETE ... RETURNING`` on the challenge itself (SQLite ≥ 3.35 and
PostgreSQL), so of two verifications racing with one signed challenge exactly
one gets its row. The sign counter only moves forward: :func:`record_use` is a
conditional UPDATE, so a clone that signs with an old counter, even in a race,
is refused (WebAuthn §6.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime

REGISTER = "register"
AUTHENTICATE = "authenticate"


class Passkey(SQLModel, table=True):
    """One registered WebAuthn credential (WebAuthn §4 "credential record")."""

    __tablename__ = "passkeys"

    # base64url of the authenticator's credential id (at most 1023 bytes, §5.1).
    credential_id: str = Field(primary_key=True, max_length=1400)
    person_hash: str = Field(index=True, max_length=64)
    public_key: bytes = Field(sa_type=LargeBinary)  # COSE_Key (RFC 9053), as attested
    sign_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    aaguid: str = Field(max_length=36)
    transports: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class PasskeyChallenge(SQLModel, table=True):
    """A ceremony's challenge (WebAuthn §13.4.3), for one login session and purpose."""

    __tablename__ = "passkey_challenges"

    challenge: str = Field(primary_key=True, max_length=64)  # base64url of 32 random bytes
    session_id: str = Field(index=True, max_length=40)
    purpose: str = Field(max_length=20)
    interaction_id: str | None = Field(default=None, max_length=64)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


PASSKEYS = Passkey.__table__  # type: ignore[attr-defined]
CHALLENGES = PasskeyChallenge.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SpentChallenge:
    challenge: str
    interaction_id: str | None


def issue_challenge(
    db: Session,
    *,
    challenge: str,
    session_id: str,
    purpose: str,
    interaction_id: str | None,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Store a new challenge; the session's earlier ones for this purpose and
    expired ones of anyone stop working (one ceremony at a time per session)."""
    db.execute(
        delete(CHALLENGES).where(
            or_(
                (CHALLENGES.c.session_id == session_id) & (CHALLENGES.c.purpose == purpose),
                CHALLENGES.c.expires_at < now,
            )
        )
    )
    db.execute(
        insert(CHALLENGES).values(
            challenge=challenge,
            session_id=session_id,
            purpose=purpose,
            interaction_id=interaction_id,
            expires_at=expires_at,
        )
    )


def spend(
    db: Session, *, challenge: str, session_id: str, purpose: str, now: datetime
) -> SpentChallenge | None:
    """Take the challenge if it is this session's, for this purpose, and unexpired; once."""
    row = (
        db.execute(
            delete(CHALLENGES)
            .where(
                CHALLENGES.c.challenge == challenge,
                CHALLENGES.c.session_id == session_id,
                CHALLENGES.c.purpose == purpose,
                CHALLENGES.c.expires_at > now,
            )
            .returning(CHALLENGES.c.challenge, CHALLENGES.c.interaction_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return SpentChallenge(row["challenge"], row["interaction_id"])


def add(db: Session, passkey: Passkey) -> bool:
    """Store a new passkey; False when that credential id is registered already
    (by anyone: the primary key decides, also between two racing registrations)."""
    values = {column.name: getattr(passkey, column.name) for column in PASSKEYS.c}
    try:
        with db.begin_nested():
            db.execute(insert(PASSKEYS).values(**values))
    except IntegrityError:
        return False
    return True


def of_person(db: Session, person_hash: str) -> list[Passkey]:
    return list(
        db.scalars(
            select(Passkey)
            .where(PASSKEYS.c.person_hash == person_hash)
            .order_by(PASSKEYS.c.created_at)
        )
    )


def has_any(db: Session, person_hash: str) -> bool:
    found = db.execute(
        select(PASSKEYS.c.credential_id).where(PASSKEYS.c.person_hash == person_hash).limit(1)
    ).first()
    return found is not None


def by_credential_id(db: Session, credential_id: str) -> Passkey | None:
    return db.get(Passkey, credential_id)


def record_use(db: Session, credential_id: str, new_sign_count: int, now: datetime) -> bool:
    """Move the counter to ``new_sign_count`` if that is forward; False for a
    regression (a cloned authenticator, WebAuthn §6.1.1). Authenticators that
    keep no counter report 0 every time and are let through (§6.1.1)."""
    if new_sign_count == 0:
        forward = PASSKEYS.c.sign_count == 0
    else:
        forward = PASSKEYS.c.sign_count < new_sign_count
    result = db.execute(
        update(PASSKEYS)
        .where(PASSKEYS.c.credential_id == credential_id, forward)
        .values(sign_count=new_sign_count, last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def prune_challenges(db: Session, now: datetime) -> int:
    result = db.execute(delete(CHALLENGES).where(CHALLENGES.c.expires_at < now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def remove(db: Session, person_hash: str, credential_id: str) -> bool:
    """Delete one of this person's passkeys (a lost device); False if it is not theirs."""
    result = db.execute(
        delete(PASSKEYS).where(
            PASSKEYS.c.credential_id == credential_id, PASSKEYS.c.person_hash == person_hash
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
