"""External account binding keys (RFC 8555 §7.3.4): the table ``acme_eab_keys``.

An administrator creates one for a legal entity and a service policy; its MAC
key is stored sealed (:mod:`idp.secrets_at_rest`) and shown once. A key binds
exactly one account: :func:`bind` is one conditional UPDATE (``account_id IS
NULL AND revoked_at IS NULL``), so of two newAccount requests racing with the
same key, on any workers or hosts, exactly one binds it; ``account_id`` is
unique besides.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, update
from sqlmodel import Field, Session, SQLModel, col, select

from idp.storage.types import UtcDateTime


class AcmeEabKey(SQLModel, table=True):
    __tablename__ = "acme_eab_keys"

    kid: str = Field(primary_key=True, max_length=64)
    national_id: str = Field(index=True, max_length=11)
    service_code: str = Field(max_length=64)
    hmac_key_sealed: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(max_length=128)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    account_id: str | None = Field(default=None, unique=True, max_length=32)
    bound_at: datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


KEYS = AcmeEabKey.__table__  # type: ignore[attr-defined]


def insert(session: Session, key: AcmeEabKey) -> None:
    session.add(key)
    session.flush()


def get(session: Session, kid: str) -> AcmeEabKey | None:
    return session.get(AcmeEabKey, kid)


def list_all(session: Session) -> list[AcmeEabKey]:
    return list(session.exec(select(AcmeEabKey).order_by(col(AcmeEabKey.created_at))))


def bind(session: Session, kid: str, account_id: str, now: datetime) -> bool:
    """Bind the key to ``account_id`` if it is unrevoked and bound to none; False otherwise."""
    result = session.execute(
        update(KEYS)
        .where(KEYS.c.kid == kid, KEYS.c.account_id.is_(None), KEYS.c.revoked_at.is_(None))
        .values(account_id=account_id, bound_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def revoke(session: Session, kid: str, now: datetime) -> bool:
    """Revoke the key; False when it does not exist or was revoked before."""
    result = session.execute(
        update(KEYS).where(KEYS.c.kid == kid, KEYS.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
