"""Remembered consents: a person lets one client receive one set of claims, until revoked.

A consent covers a request when its claim set contains every requested claim
(a client asking for less than it was granted needs no new question; asking
for more does). Rows are unique per person, client and claim set, so two
workers recording the same grant leave one row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

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


def claims_key(claims: Iterable[str]) -> str:
    return " ".join(sorted(set(claims)))


def has_consent(db_session: Session, national_code: str, client_id: str, claims: list[str]) -> bool:
    """True when a live consent of this person lets this client receive all of ``claims``."""
    wanted = set(claims)
    rows = (
        db_session.connection()
        .execute(_GRANTED_CLAIMS, {"national_code": national_code, "client_id": client_id})
        .scalars()
    )
    return any(wanted <= set(granted) for granted in rows)


def remember_consent(
    db_session: Session, national_code: str, client_id: str, claims: list[str]
) -> None:
    """Record (or revive) the consent for exactly this claim set."""
    key = claims_key(claims)
    now = datetime.now(UTC)
    revived = db_session.execute(
        update(Consent)
        .where(
            col(Consent.national_code) == national_code,
            col(Consent.client_id) == client_id,
            col(Consent.claims_key) == key,
        )
        .values(revoked_at=None, granted_at=now)
    )
    if revived.rowcount:  # type: ignore[attr-defined]
        return
    try:
        # A savepoint, so that losing the race to another worker keeps the outer transaction.
        with db_session.begin_nested():
            db_session.add(
                Consent(
                    national_code=national_code,
                    client_id=client_id,
                    claims_key=key,
                    claims=sorted(set(claims)),
                    granted_at=now,
                )
            )
    except IntegrityError:
        return


def list_consents(db_session: Session, national_code: str) -> list[Consent]:
    return list(
        db_session.exec(
            select(Consent)
            .where(Consent.national_code == national_code, col(Consent.revoked_at).is_(None))
            .order_by(col(Consent.granted_at).desc())
        ).all()
    )


def revoke_consent(db_session: Session, national_code: str, consent_id: int) -> bool:
    """Revoke one of this person's consents; False when it is not theirs or already revoked."""
    result = db_session.execute(
        update(Consent)
        .where(
            col(Consent.id) == consent_id,
            col(Consent.national_code) == national_code,
            col(Consent.revoked_at).is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
