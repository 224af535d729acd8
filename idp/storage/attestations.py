"""Attestation tables: issued attestations, status list allocation, shared presentations.

The server keeps what it needs to revoke and publish status, not the facts:
an attestation row holds the holder's subject hash, purpose, recipient and the
status entry. A holder who asks for a verification code gets a sealed copy of
one presentation (:class:`AttestationShare`), encrypted under a key derived
from the code itself, which the server does not keep.

Status entries are handed out by :func:`allocate_status_index`: an
``UPDATE ... RETURNING`` on the list's counter row, so two processes can never
get the same position; the issuer scatters positions over the list with a
keyed permutation (so an index says nothing about when it was issued), and the
unique constraint on (list, index) backs both up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Column,
    Index,
    LargeBinary,
    UniqueConstraint,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime

STATUS_LIST_SIZE = 262_144  # 2^18 one-bit entries: 32 KiB, a few hundred bytes compressed


class Attestation(SQLModel, table=True):
    __tablename__ = "attestations"
    __table_args__ = (
        UniqueConstraint("status_list_id", "status_index", name="uq_attestations_status_entry"),
        Index("ix_attestations_holder_issued", "holder_subject_hash", "issued_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    holder_subject_hash: str = Field(max_length=64)
    purpose: str = Field(max_length=500)
    recipient: str | None = Field(default=None, max_length=500)
    formats: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    facts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status_list_id: int
    status_index: int
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, index=True, sa_type=UtcDateTime)
    tracking_code: str = Field(max_length=40, index=True)
    client_id: str | None = Field(default=None, max_length=64)


class StatusListCounter(SQLModel, table=True):
    """Next free entry of each status list; a list is full when ``next_index == size``."""

    __tablename__ = "attestation_status_lists"

    list_id: int = Field(primary_key=True)
    size: int
    next_index: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AttestationShare(SQLModel, table=True):
    """A presentation sealed under its verification code; ``code_digest`` finds it."""

    __tablename__ = "attestation_shares"

    code_digest: str = Field(primary_key=True, max_length=64)
    attestation_id: str = Field(foreign_key="attestations.id", max_length=40, index=True)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class StatusSlot(NamedTuple):
    """The n-th entry handed out in a list (``position``), and the list's size."""

    list_id: int
    position: int
    size: int


# Plain SQL for the hot path (built once): the row lock (PostgreSQL) or the write lock
# (SQLite) serialises concurrent claims on a list, and a full list matches no row.
_NEWEST = text("SELECT max(list_id) FROM attestation_status_lists")
_CLAIM = text(
    "UPDATE attestation_status_lists SET next_index = next_index + 1 "
    "WHERE list_id = :list_id AND next_index < size "
    "RETURNING next_index - 1, size"
)


def allocate_status_index(session: Session, size: int = STATUS_LIST_SIZE) -> StatusSlot:
    """Claim the next entry of the newest list, atomically across processes."""
    while True:
        current = session.execute(_NEWEST).scalar()
        if current is not None:
            claimed = session.execute(_CLAIM, {"list_id": current}).first()
            if claimed is not None:
                return StatusSlot(current, claimed[0], claimed[1])
        # The list we found is full (or none exists): open the one after it, and only
        # that one. Another process may open it first; the primary key refuses the
        # second insert and we claim from theirs.
        new_id = (current or 0) + 1
        try:
            with session.begin_nested():
                session.add(StatusListCounter(list_id=new_id, size=size, next_index=1))
            return StatusSlot(new_id, 0, size)
        except IntegrityError:
            continue


def revoked_indexes(session: Session, list_id: int) -> list[int]:
    rows = session.execute(
        select(col(Attestation.status_index)).where(
            col(Attestation.status_list_id) == list_id,
            col(Attestation.revoked_at).is_not(None),
        )
    )
    return [row[0] for row in rows]


def status_list_size(session: Session, list_id: int) -> int | None:
    counter = session.get(StatusListCounter, list_id)
    return counter.size if counter else None


# --- attestations --------------------------------------------------------------------

_INSERT_ATTESTATION = insert(Attestation)


def insert_attestation(session: Session, values: Mapping[str, Any]) -> None:
    """Record an issued attestation (every column given in ``values``).

    A Core insert of a statement built once: the row is made of checked values,
    and the ORM's per-object work would be a third of the cost of issuing.
    """
    session.execute(_INSERT_ATTESTATION, values)


def attestation(session: Session, attestation_id: str) -> Attestation | None:
    return session.get(Attestation, attestation_id)


def attestation_for_update(session: Session, attestation_id: str) -> Attestation | None:
    """The row, locked until the transaction ends (one revocation wins)."""
    return session.get(Attestation, attestation_id, with_for_update=True)


def mark_revoked(session: Session, row: Attestation, when: datetime) -> None:
    row.revoked_at = when
    session.add(row)


def holder_attestations(
    session: Session, holder_subject_hash: str, limit: int = 200
) -> list[Attestation]:
    """A holder's attestations, newest first."""
    return list(
        session.execute(
            select(Attestation)
            .where(col(Attestation.holder_subject_hash) == holder_subject_hash)
            .order_by(col(Attestation.issued_at).desc())
            .limit(limit)
        ).scalars()
    )


# --- shared presentations ------------------------------------------------------------


def add_share(session: Session, share: AttestationShare) -> None:
    session.add(share)


def share_by_digest(session: Session, code_digest: str) -> AttestationShare | None:
    return session.get(AttestationShare, code_digest)


def delete_shares_expired_before(session: Session, when: datetime) -> int:
    """Delete sealed presentations whose expiry is before ``when``; how many."""
    result = session.execute(
        delete(AttestationShare).where(col(AttestationShare.expires_at) < when)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
