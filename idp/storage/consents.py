"""Remembered consents: the ``consents`` statements.

Rows are unique per person, client and claim set, so two workers recording
the same grant leave one row (the loser's insert is dropped in a savepoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from idp.storage.login import Consent

CONSENTS = Consent.__table__  # type: ignore[attr-defined]
# A Core query: every login asks it, and the ORM's select cost several times the query.
_GRANTED_CLAIMS = select(CONSENTS.c.claims).where(
    CONSENTS.c.national_code == bindparam("national_code"),
    CONSENTS.c.client_id == bindparam("client_id"),
    CONSENTS.c.revoked_at.is_(None),
)


def granted_claim_sets(db: Session, national_code: str, client_id: str) -> Iterator[list[str]]:
    """The claim sets of this person's live consents to this client."""
    values = {"national_code": national_code, "client_id": client_id}
    return iter(db.connection().execute(_GRANTED_CLAIMS, values).scalars())


def revive(db: Session, national_code: str, client_id: str, claims_key: str, now: datetime) -> bool:
    """Grant again a consent recorded before for exactly this claim set; False if none was."""
    result = db.execute(
        update(Consent)
        .where(
            col(Consent.national_code) == national_code,
            col(Consent.client_id) == client_id,
            col(Consent.claims_key) == claims_key,
        )
        .values(revoked_at=None, granted_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_once(db: Session, consent: Consent) -> None:
    """Insert ``consent`` unless another worker just did (the outer transaction goes on)."""
    try:
        with db.begin_nested():
            db.add(consent)
    except IntegrityError:
        return


def live(db: Session, national_code: str) -> list[Consent]:
    """This person's consents not revoked, newest first."""
    return list(
        db.exec(
            select(Consent)
            .where(Consent.national_code == national_code, col(Consent.revoked_at).is_(None))
            .order_by(col(Consent.granted_at).desc())
        ).all()
    )


def revoke(db: Session, national_code: str, consent_id: int, now: datetime) -> bool:
    """Revoke one of this person's consents; False when it is not theirs or already revoked."""
    result = db.execute(
        update(Consent)
        .where(
            col(Consent.id) == consent_id,
            col(Consent.national_code) == national_code,
            col(Consent.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
