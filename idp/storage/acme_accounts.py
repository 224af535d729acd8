"""ACME accounts (RFC 8555 §7.1.2, §7.3): the table ``acme_accounts``.

The account key is stored as its public JWK, and its RFC 7638 thumbprint is
unique: one key, one account, checked by the database (newAccount races and
key rollover to a key in use fail there, on any worker or host). Status
changes are conditional UPDATEs (``WHERE status = 'valid'``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from idp.storage.types import UtcDateTime


class AcmeAccountRow(SQLModel, table=True):
    __tablename__ = "acme_accounts"

    id: str = Field(primary_key=True, max_length=32)
    ca: str = Field(max_length=64)
    status: str = Field(max_length=16)  # valid | deactivated | revoked
    jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    jwk_thumbprint: str = Field(unique=True, max_length=64)
    contact: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    terms_agreed: bool = Field(default=False)
    eab_key_id: str = Field(foreign_key="acme_eab_keys.kid", unique=True, max_length=64)
    national_id: str = Field(index=True, max_length=11)
    service_code: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


ACCOUNTS = AcmeAccountRow.__table__  # type: ignore[attr-defined]


def get(session: Session, account_id: str) -> AcmeAccountRow | None:
    return session.get(AcmeAccountRow, account_id)


def by_thumbprint(session: Session, thumbprint: str) -> AcmeAccountRow | None:
    statement = select(AcmeAccountRow).where(AcmeAccountRow.jwk_thumbprint == thumbprint)
    return session.exec(statement).first()


def by_eab_key(session: Session, kid: str) -> AcmeAccountRow | None:
    return session.exec(select(AcmeAccountRow).where(AcmeAccountRow.eab_key_id == kid)).first()


def insert(session: Session, row: AcmeAccountRow) -> bool:
    """Insert the account; False when its key (or its EAB key) has an account already."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # The SAVEPOINT's rollback has taken the row out of the session already.
        return False
    return True


def set_status(
    session: Session, account_id: str, from_status: str, to_status: str, now: datetime
) -> bool:
    result = session.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.id == account_id, ACCOUNTS.c.status == from_status)
        .values(status=to_status, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def set_contact(session: Session, account_id: str, contact: list[str], now: datetime) -> bool:
    result = session.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.id == account_id, ACCOUNTS.c.status == "valid")
        .values(contact=contact, updated_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def change_key(
    session: Session,
    account_id: str,
    old_thumbprint: str,
    jwk: dict[str, Any],
    thumbprint: str,
    now: datetime,
) -> bool | None:
    """Replace the key if it still is ``old_thumbprint``: True done, False the account's key
    changed meanwhile (or it is no longer valid), None the new key belongs to an account."""
    try:
        with session.begin_nested():
            result = session.execute(
                update(ACCOUNTS)
                .where(
                    ACCOUNTS.c.id == account_id,
                    ACCOUNTS.c.jwk_thumbprint == old_thumbprint,
                    ACCOUNTS.c.status == "valid",
                )
                .values(jwk=jwk, jwk_thumbprint=thumbprint, updated_at=now)
            )
    except IntegrityError:
        return None
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def revoke_by_eab_key(session: Session, kid: str, now: datetime) -> str | None:
    """Mark the account bound to EAB key ``kid`` revoked; its id, or None if it has none."""
    row = by_eab_key(session, kid)
    if row is None:
        return None
    session.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.id == row.id, ACCOUNTS.c.status == "valid")
        .values(status="revoked", updated_at=now)
    )
    return row.id
